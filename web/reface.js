// The try-it page: sends the chosen photo to POST /predict (multipart field
// "image") and shows every face of the reply, with its box drawn over the
// photo. Only the public API is used. A server without face detection
// answers without "faces"; its single prediction is then shown with no box.
'use strict';

(function () {
    var form = document.getElementById('upload');
    var input = document.getElementById('photo');
    var detect = document.getElementById('detect');
    var statusLine = document.getElementById('status');
    var errorLine = document.getElementById('error');
    var result = document.getElementById('result');
    var summary = document.getElementById('summary');
    var preview = document.getElementById('preview');
    var boxes = document.getElementById('boxes');
    var caption = document.getElementById('caption');
    var faceList = document.getElementById('faces');
    var faceTemplate = document.getElementById('face-template');
    var emotionTemplate = document.getElementById('emotion-template');

    // Each request gets a number; an answer that arrives after a newer
    // request was sent is dropped, so a slow reply never overwrites a
    // newer photo.
    var sequence = 0;
    var previewUrl = null;

    function percent(p) {
        return (p * 100).toFixed(1) + ' %';
    }

    function setState(state) {
        result.dataset.state = state;
        document.body.dataset.state = state;
    }

    function showError(message) {
        statusLine.textContent = '';
        errorLine.textContent = message;
        errorLine.hidden = false;
        setState('error');
    }

    // The faces to show: the reply's own list, or, from a server that does
    // not detect faces, the top-level prediction as one face with no box.
    function facesOf(reply) {
        if (Array.isArray(reply.faces)) {
            return reply.faces;
        }
        if (typeof reply.age === 'number') {
            return [{
                age: reply.age,
                gender_name: reply.gender_name,
                gender_probability: reply.gender_probability,
                emotions: reply.emotions
            }];
        }
        return [];
    }

    function summaryOf(reply, faces) {
        var n = faces.length;
        if (!Array.isArray(reply.faces)) {
            return 'This server does not report face boxes: the prediction ' +
                'below is for the whole photo.';
        }
        if (n === 0) {
            return 'No face found in this photo.';
        }
        if (reply.face_detected === false) {
            return 'Face detection was off: the whole photo is one face.';
        }
        return n === 1 ? '1 face found.' : n + ' faces found, largest first.';
    }

    // gender_probability is P(male); show the probability of the gender
    // named.
    function genderText(face) {
        var p = face.gender_probability;
        if (face.gender_name === 'female') {
            p = 1 - p;
        }
        return face.gender_name + ' (' + percent(p) + ')';
    }

    function renderFace(face, index) {
        var item = faceTemplate.content.firstElementChild.cloneNode(true);
        item.dataset.face = String(index + 1);
        item.querySelector('.face-title').textContent = 'Face ' + (index + 1);
        item.querySelector('.age').textContent =
            face.age.toFixed(1) + ' years';
        item.querySelector('.gender').textContent = genderText(face);
        if (typeof face.score === 'number') {
            item.querySelector('.score').textContent = percent(face.score);
        } else {
            item.querySelector('.score-label').remove();
            item.querySelector('.score').remove();
        }
        if (!face.box) {
            item.querySelector('.swatch').remove();
        }

        var list = item.querySelector('.emotions');
        Object.keys(face.emotions || {}).forEach(function (label) {
            var p = face.emotions[label];
            var row = emotionTemplate.content.firstElementChild.cloneNode(true);
            row.dataset.emotion = label;
            row.querySelector('.label').textContent = label;
            row.querySelector('.fill').style.width = (p * 100) + '%';
            row.querySelector('.value').textContent = percent(p);
            list.appendChild(row);
        });
        return item;
    }

    // Boxes are placed in percent of the image, so they follow the photo
    // however large it is drawn. The reply's image size is the decoded,
    // upright image, which is also what the browser shows.
    function renderBoxes(faces, width, height) {
        faces.forEach(function (face, index) {
            if (!face.box || !width || !height) {
                return;
            }
            var box = document.createElement('div');
            box.className = 'box';
            box.dataset.face = String(index + 1);
            box.style.left = (face.box.x / width * 100) + '%';
            box.style.top = (face.box.y / height * 100) + '%';
            box.style.width = (face.box.width / width * 100) + '%';
            box.style.height = (face.box.height / height * 100) + '%';
            var tag = document.createElement('span');
            tag.textContent = String(index + 1);
            box.appendChild(tag);
            boxes.appendChild(box);
        });
    }

    function render(reply) {
        var faces = facesOf(reply);
        var width = reply.image ? reply.image.width : preview.naturalWidth;
        var height = reply.image ? reply.image.height : preview.naturalHeight;

        summary.textContent = summaryOf(reply, faces);
        faceList.replaceChildren();
        boxes.replaceChildren();
        faces.forEach(function (face, index) {
            faceList.appendChild(renderFace(face, index));
        });
        renderBoxes(faces, width, height);
        caption.hidden = boxes.childElementCount === 0;
        statusLine.textContent = 'Done.';
        setState('done');
    }

    function replyError(status, reply) {
        if (reply && typeof reply.error === 'string') {
            return 'The server answered: ' + reply.error +
                ' (HTTP ' + status + ').';
        }
        return 'The server answered HTTP ' + status + ' without a usable ' +
            'reply.';
    }

    function send(file) {
        var mine = ++sequence;
        var body = new FormData();
        var url = 'predict' + (detect.checked ? '' : '?detect=false');

        body.append('image', file, file.name || 'photo');
        errorLine.hidden = true;
        errorLine.textContent = '';
        result.hidden = true;
        summary.textContent = '';
        faceList.replaceChildren();
        boxes.replaceChildren();
        statusLine.textContent = 'Looking at ' + (file.name || 'the photo') +
            '…';
        setState('busy');

        if (previewUrl) {
            URL.revokeObjectURL(previewUrl);
        }
        previewUrl = URL.createObjectURL(file);
        preview.src = previewUrl;
        // Where the reply gives no image size, the boxes need the photo's.
        var loaded = preview.decode().catch(function () {
            return null;
        });

        var status = 0;
        fetch(url, { method: 'POST', body: body })
            .then(function (response) {
                status = response.status;
                return response.text();
            })
            .then(function (text) {
                var reply = null;
                try {
                    reply = JSON.parse(text);
                } catch (e) {
                    reply = null;
                }
                return loaded.then(function () {
                    return reply;
                });
            })
            .then(function (reply) {
                if (mine !== sequence) {
                    return;
                }
                if (status !== 200 || !reply || typeof reply !== 'object' ||
                        reply.error) {
                    showError(replyError(status, reply));
                    return;
                }
                try {
                    render(reply);
                    result.hidden = false;
                } catch (e) {
                    showError('The server\'s reply could not be shown.');
                }
            }, function () {
                if (mine === sequence) {
                    showError('The server could not be reached.');
                }
            });
    }

    input.addEventListener('change', function () {
        if (input.files.length > 0) {
            send(input.files[0]);
            // Choosing the same file again must send it again.
            input.value = '';
        }
    });

    form.addEventListener('submit', function (event) {
        event.preventDefault();
    });

    // Dropping a file anywhere on the page sends it; the browser must not
    // open it instead.
    ['dragenter', 'dragover'].forEach(function (name) {
        document.addEventListener(name, function (event) {
            event.preventDefault();
            form.classList.add('dragging');
        });
    });
    ['dragleave', 'drop'].forEach(function (name) {
        document.addEventListener(name, function (event) {
            event.preventDefault();
            form.classList.remove('dragging');
        });
    });
    document.addEventListener('drop', function (event) {
        var files = event.dataTransfer ? event.dataTransfer.files : null;
        if (files && files.length > 0) {
            send(files[0]);
        }
    });

    setState('ready');
}());
