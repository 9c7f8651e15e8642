-- wrk script of `make bench`: every request is a POST of one image file as
-- the multipart field "image". usage: wrk ... -s bench/post.lua URL -- FILE
-- done() prints one line "BENCH {json}" that bench/run.py reads.

local boundary = "----refacebench7d41a9c3"

function init(args)
    local f = assert(io.open(args[1], "rb"))
    local data = f:read("*a")
    f:close()
    wrk.method = "POST"
    wrk.headers["Content-Type"] =
        "multipart/form-data; boundary=" .. boundary
    wrk.body = "--" .. boundary .. "\r\n" ..
        'Content-Disposition: form-data; name="image"; filename="' ..
        args[1]:match("[^/]*$") .. '"\r\n' ..
        "Content-Type: application/octet-stream\r\n\r\n" ..
        data .. "\r\n--" .. boundary .. "--\r\n"
end

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        'BENCH {"requests": %d, "duration_us": %d, "p50_us": %d, ' ..
        '"p90_us": %d, "p99_us": %d, "max_us": %d, "connect": %d, ' ..
        '"read": %d, "write": %d, "status": %d, "timeout": %d}\n',
        summary.requests, summary.duration, latency:percentile(50),
        latency:percentile(90), latency:percentile(99), latency.max,
        e.connect, e.read, e.write, e.status, e.timeout))
end
