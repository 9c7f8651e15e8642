// Drives the try-it page (web/) in Debian's chromium with playwright-core
// and checks what a person would see against what POST /predict answers.
// Prints one "ok NAME" or "not ok NAME: detail" line per check; the shell
// test (tests/e2e/test_browser.sh) counts them.
//
// usage: node check_page.js BASE_URL NOT_AN_IMAGE NO_FACE SCREENSHOT
//            IMAGE[:FACES]...
// Each IMAGE is picked in turn (FACES: the number of faces it must give);
// the screenshot is taken with the last one shown.
//
// playwright-core comes from build/node (scripts/install-deps.sh); it never
// downloads a browser: executablePath is Debian's /usr/bin/chromium.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');

const [base, textPath, noFacePath, screenshotPath, ...photoArgs] =
    process.argv.slice(2);
const photos = photoArgs.map((arg) => {
    const [file, faces] = arg.split(':');
    return { file: file, faces: faces === undefined ? null : Number(faces) };
});
const imagePath = photos[0].file;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
// Box edges may differ from the reply by sub-pixel rounding and the box's
// border; anything more is a misplaced box.
const BOX_TOLERANCE_PX = 2;
// Each wait; generous for a loaded 2-core machine, never a timing check.
const WAIT_MS = 60000;

let passed = 0;
let failed = 0;

function check(name, condition, detail) {
    if (condition) {
        passed += 1;
        console.log('ok ' + name);
    } else {
        failed += 1;
        console.log('not ok ' + name + (detail ? ': ' + detail : ''));
    }
}

function percent(p) {
    return (p * 100).toFixed(1) + ' %';
}

// What the page must show for one face of a reply: the page's formatting
// rules, written out independently of web/reface.js.
function expectedFace(face) {
    const named = face.gender_name === 'female'
        ? 1 - face.gender_probability : face.gender_probability;
    return {
        age: face.age.toFixed(1) + ' years',
        gender: face.gender_name + ' (' + percent(named) + ')',
        score: typeof face.score === 'number' ? percent(face.score) : null,
        emotions: Object.entries(face.emotions).map(([label, p]) => ({
            label: label, value: percent(p), p: p
        }))
    };
}

// The faces a reply describes: "faces", or the top-level prediction of a
// server without detection.
function facesOf(reply) {
    if (Array.isArray(reply.faces)) {
        return reply.faces;
    }
    return typeof reply.age === 'number' ? [reply] : [];
}

// POST /predict from Node, outside the browser: the reference answer.
async function predict(file, query) {
    const body = new FormData();
    body.append('image', new Blob([fs.readFileSync(file)]),
        path.basename(file));
    const response = await fetch(base + '/predict' + (query || ''),
        { method: 'POST', body: body });
    return { status: response.status, reply: await response.json() };
}

// Everything the page shows about the faces and boxes, read from the DOM.
async function readPage(page) {
    return page.evaluate(() => {
        const img = document.getElementById('preview');
        const frame = img.getBoundingClientRect();
        const faces = Array.from(document.querySelectorAll('#faces > li'));
        const boxes = Array.from(document.querySelectorAll('#boxes .box'));
        const text = (el, sel) => {
            const found = el.querySelector(sel);
            return found ? found.textContent.trim() : null;
        };
        return {
            summary: document.getElementById('summary').textContent,
            resultHidden: document.getElementById('result').hidden,
            image: { width: frame.width, height: frame.height,
                natural: img.naturalWidth },
            faces: faces.map((li) => ({
                title: text(li, '.face-title'),
                age: text(li, '.age'),
                gender: text(li, '.gender'),
                score: text(li, '.score'),
                visible: li.getBoundingClientRect().height > 0,
                emotions: Array.from(li.querySelectorAll('.emotions li'))
                    .map((row) => ({
                        label: text(row, '.label'),
                        value: text(row, '.value'),
                        fill: row.querySelector('.fill')
                            .getBoundingClientRect().width,
                        track: row.querySelector('.bar')
                            .getBoundingClientRect().width
                    }))
            })),
            boxes: boxes.map((box) => {
                const r = box.getBoundingClientRect();
                return {
                    label: box.textContent.trim(),
                    x: r.left - frame.left, y: r.top - frame.top,
                    width: r.width, height: r.height
                };
            })
        };
    });
}

// Compares the page with a reply: one card per face in order, each value
// as the reply gives it, every emotion with a bar of the right length, and
// one box per face where the reply has boxes, where the reply puts it.
function compare(tag, shown, reply) {
    const faces = facesOf(reply);
    check(tag + ': result shown', !shown.resultHidden);
    check(tag + ': one card per face', shown.faces.length === faces.length,
        'page ' + shown.faces.length + ', reply ' + faces.length);
    faces.forEach((face, i) => {
        const want = expectedFace(face);
        const got = shown.faces[i] || { emotions: [] };
        const name = tag + ': face ' + (i + 1);
        check(name + ' is visible', got.visible === true);
        check(name + ' title', got.title === 'Face ' + (i + 1), got.title);
        check(name + ' age', got.age === want.age,
            'page "' + got.age + '", reply ' + face.age);
        check(name + ' gender and probability', got.gender === want.gender,
            'page "' + got.gender + '", want "' + want.gender + '"');
        check(name + ' detection score', got.score === want.score,
            'page "' + got.score + '", want "' + want.score + '"');
        check(name + ' emotion labels in the reply\'s order',
            JSON.stringify(got.emotions.map((e) => e.label)) ===
            JSON.stringify(want.emotions.map((e) => e.label)),
            got.emotions.map((e) => e.label).join(','));
        const badValue = want.emotions.find((e, k) =>
            !got.emotions[k] || got.emotions[k].value !== e.value);
        check(name + ' emotion values', want.emotions.length > 0 &&
            !badValue, badValue && badValue.label);
        const badBar = want.emotions.find((e, k) => {
            const row = got.emotions[k];
            return !row || !(row.track > 0) ||
                Math.abs(row.fill - e.p * row.track) > 1;
        });
        check(name + ' emotion bar lengths', want.emotions.length > 0 &&
            !badBar, badBar && badBar.label);
    });

    if (reply.image) {
        // The photo as drawn has the shape of the pixels the server
        // analysed (a JPEG's EXIF rotation must not turn one and not the
        // other).
        const drawn = shown.image.width / shown.image.height;
        const analysed = reply.image.width / reply.image.height;
        check(tag + ': photo drawn with the shape the server saw',
            Math.abs(drawn / analysed - 1) < 0.02,
            'drawn ' + shown.image.width + 'x' + shown.image.height +
            ', reply ' + reply.image.width + 'x' + reply.image.height);
    }

    const boxed = faces.filter((f) => f.box);
    check(tag + ': one box per face with a box',
        shown.boxes.length === boxed.length,
        'page ' + shown.boxes.length + ', reply ' + boxed.length);
    if (boxed.length === 0 || !reply.image) {
        return;
    }
    // The photo is drawn scaled: reply pixels times the scale are CSS px.
    const sx = shown.image.width / reply.image.width;
    const sy = shown.image.height / reply.image.height;
    faces.forEach((face, i) => {
        const box = shown.boxes[i];
        if (!face.box || !box) {
            return;
        }
        const want = { x: face.box.x * sx, y: face.box.y * sy,
            width: face.box.width * sx, height: face.box.height * sy };
        const off = ['x', 'y', 'width', 'height'].filter((k) =>
            Math.abs(box[k] - want[k]) > BOX_TOLERANCE_PX);
        check(tag + ': box ' + (i + 1) + ' where the reply puts it',
            off.length === 0 && box.label === String(i + 1),
            'page ' + JSON.stringify(box) + ', want ' + JSON.stringify(want));
    });
}

// Picks a file in the page, waits for its /predict answer and for the page
// to finish; returns the reply the page received.
async function upload(page, file) {
    const answered = page.waitForResponse(
        (r) => new URL(r.url()).pathname === '/predict', { timeout: WAIT_MS });
    await page.setInputFiles('#photo', file);
    const response = await answered;
    await page.waitForFunction(
        () => ['done', 'error'].includes(document.body.dataset.state),
        null, { timeout: WAIT_MS });
    return response;
}

async function main() {
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'reface-chromium-'));
    const context = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
            '--no-first-run', '--disable-background-networking',
            '--disable-component-update', '--disable-sync'],
        viewport: { width: 1200, height: 800 },
        deviceScaleFactor: 1
    });
    const origin = new URL(base).origin;
    const foreign = [];
    const consoleErrors = [];
    context.on('request', (r) => {
        const url = r.url();
        if (!url.startsWith(origin + '/') && !url.startsWith('data:') &&
                !url.startsWith('blob:')) {
            foreign.push(url);
        }
    });

    try {
        const page = await context.newPage();
        page.on('console', (m) => {
            if (m.type() === 'error') {
                consoleErrors.push(m.text());
            }
        });
        page.on('pageerror', (e) => consoleErrors.push(String(e)));

        // --- the page loads, with an accessible file picker -------------
        const landing = await page.goto(base + '/', { timeout: WAIT_MS });
        check('GET / is 200 HTML', landing.status() === 200 &&
            /^text\/html/.test(landing.headers()['content-type']),
            landing.status() + ' ' + landing.headers()['content-type']);
        check('page title', (await page.title()) === 'Reface: try it');
        await page.waitForFunction(() => document.body.dataset.state ===
            'ready', null, { timeout: WAIT_MS });
        check('script ran', true);
        const picker = page.getByLabel('Choose a photo');
        check('file input is labelled "Choose a photo"',
            (await picker.count()) === 1 &&
            (await picker.getAttribute('type')) === 'file');
        await page.keyboard.press('Tab');
        const focus = await page.evaluate(() => ({
            id: document.activeElement.id,
            outline: getComputedStyle(document.querySelector('.pick'))
                .outlineStyle
        }));
        check('Tab reaches the file picker and shows it focused',
            focus.id === 'photo' && focus.outline !== 'none',
            JSON.stringify(focus));

        // --- real photos: what the page shows is what /predict says ----
        let reference = null;
        for (const photo of photos) {
            const tag = path.basename(photo.file);
            const response = await upload(page, photo.file);
            const pageReply = await response.json();
            check(tag + ': page POSTed the photo and got 200',
                response.status() === 200, String(response.status()));
            // (The field name is proven by the 200: without "image" the
            // API answers 400.)
            check(tag + ': page sent multipart/form-data',
                /^multipart\/form-data/.test(
                    response.request().headers()['content-type']));
            const ref = await predict(photo.file);
            reference = reference || ref;
            check(tag + ': reference /predict is 200 with faces',
                ref.status === 200 && Array.isArray(ref.reply.faces));
            check(tag + ': page got the same faces as the reference',
                facesOf(pageReply).length === facesOf(ref.reply).length);
            const shown = await readPage(page);
            compare(tag, shown, ref.reply);
            if (photo.faces !== null) {
                check(tag + ': ' + photo.faces + ' boxes drawn',
                    shown.boxes.length === photo.faces,
                    String(shown.boxes.length));
            }
        }
        // No focus ring from the keyboard check in the picture.
        await page.evaluate(() => document.activeElement.blur());
        fs.mkdirSync(path.dirname(screenshotPath), { recursive: true });
        await page.screenshot({ path: screenshotPath, fullPage: true });
        check('screenshot saved', fs.statSync(screenshotPath).size > 10000);

        // --- a photo dropped on the page, not picked --------------------
        const dropped = page.waitForResponse(
            (r) => new URL(r.url()).pathname === '/predict',
            { timeout: WAIT_MS });
        const transfer = await page.evaluateHandle((b64) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], 'dropped.jpg',
                { type: 'image/jpeg' }));
            return dt;
        }, fs.readFileSync(imagePath).toString('base64'));
        await page.dispatchEvent('#upload', 'drop', { dataTransfer: transfer });
        check('dropped photo: page POSTed it and got 200',
            (await dropped).status() === 200);
        await page.waitForFunction(
            () => ['done', 'error'].includes(document.body.dataset.state),
            null, { timeout: WAIT_MS });
        compare('dropped photo', await readPage(page), reference.reply);

        // --- detection off: the whole photo is one face -----------------
        await page.uncheck('#detect');
        const whole = await upload(page, imagePath);
        check('detect=false: page asked for it',
            new URL(whole.url()).search === '?detect=false', whole.url());
        const wholeRef = await predict(imagePath, '?detect=false');
        const wholeShown = await readPage(page);
        compare('detect=false', wholeShown, wholeRef.reply);
        check('detect=false: summary says detection was off',
            /detection was off/.test(wholeShown.summary), wholeShown.summary);
        await page.check('#detect');

        // --- no face: the page says so ---------------------------------
        await upload(page, noFacePath);
        const noneRef = await predict(noFacePath);
        const none = await readPage(page);
        check('no face: the API found none', noneRef.status === 200 &&
            Array.isArray(noneRef.reply.faces) &&
            noneRef.reply.faces.length === 0, JSON.stringify(noneRef.reply));
        check('no face: no card, no box',
            none.faces.length === 0 && none.boxes.length === 0);
        check('no face: summary says so', /No face found/.test(none.summary),
            none.summary);

        // --- a server without detection: one card, no box --------------
        // (Answered from Node: route.fetch() would not forward the
        // multipart body of a picked file.)
        const single = JSON.parse(JSON.stringify(reference.reply));
        delete single.faces;
        delete single.image;
        delete single.face_detected;
        await page.route('**/predict*', (route) => route.fulfill({
            status: 200, contentType: 'application/json',
            body: JSON.stringify(single)
        }));
        const legacy = await upload(page, imagePath);
        const legacyShown = await readPage(page);
        check('single-face reply: page got it', (await legacy.json()).age ===
            reference.reply.age);
        compare('single-face reply', legacyShown, single);
        check('single-face reply: summary says whole photo',
            /whole photo/.test(legacyShown.summary), legacyShown.summary);
        await page.unroute('**/predict*');

        // --- an API error reaches the person ---------------------------
        const bad = await upload(page, textPath);
        const badReply = await bad.json();
        check('not an image: API says 415', bad.status() === 415 &&
            badReply.error === 'Unsupported image format',
            bad.status() + ' ' + JSON.stringify(badReply));
        const alert = page.getByRole('alert');
        const alertText = (await alert.textContent()) || '';
        check('not an image: alert shows the API error and status',
            (await alert.isVisible()) &&
            alertText.includes('Unsupported image format') &&
            alertText.includes('415'), alertText);
        check('not an image: no stale result shown',
            (await readPage(page)).resultHidden === true);

        // --- and a good photo after the error works again --------------
        await upload(page, imagePath);
        const again = await readPage(page);
        check('after an error: result shown again', !again.resultHidden &&
            !(await alert.isVisible()));
        compare('after an error', again, reference.reply);

        check('nothing loaded from another origin', foreign.length === 0,
            foreign.join(' '));
        // The 415 answer itself is logged by chromium as a failed load.
        const unexpected = consoleErrors.filter((t) => !/\b415\b/.test(t));
        check('no script errors in the console', unexpected.length === 0,
            unexpected.join(' | '));
    } finally {
        await context.close();
        fs.rmSync(profile, { recursive: true, force: true });
    }
}

main().then(() => {
    console.log('browser checks: ' + passed + ' passed, ' + failed +
        ' failed');
    process.exit(failed === 0 ? 0 : 1);
}, (e) => {
    console.log('not ok browser script finished: ' + (e && e.stack || e));
    process.exit(2);
});
