// Opens the faceflow panel in headless Chromium (Debian's, via playwright-core),
// checks that the numbers update and a preview frame arrives, that the recent
// faces appear (within a second of their events), open into the frame with
// box and landmarks, that the face histograms have data and that the page
// fits a phone; saves screenshots.
// Usage: node panel.mjs <panel url> <screenshot.png>
import { chromium } from 'playwright-core';

const [url, shot] = process.argv.slice(2);
const fail = (m) => { console.error('FAIL: ' + m); process.exit(1); };
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  // The page's own errors, for the failure message.
  page.on('console', m => console.error('console: ' + m.text()));
  page.on('pageerror', e => console.error('page error: ' + e.message));
  await page.goto(url);
  await page.waitForSelector('#cam-demo', { timeout: 15000 });
  const frames1 = Number(await page.textContent('#frames'));
  await page.waitForTimeout(2500);
  const frames2 = Number(await page.textContent('#frames'));
  if (!(frames2 > frames1)) fail(`frame counter did not move: ${frames1} -> ${frames2}`);
  const fps = Number(await page.textContent('#fps'));
  if (!(fps > 0)) fail(`fps shows ${fps}`);
  // A preview frame arrived when the <img> has decoded pixels.
  await page.waitForFunction(() => {
    const img = document.querySelector('#cam-demo img');
    return img && img.complete && img.naturalWidth > 0;
  }, null, { timeout: 15000 });
  const size = await page.evaluate(() => { const i = document.querySelector('#cam-demo img'); return [i.naturalWidth, i.naturalHeight]; });
  const state = await page.textContent('#cam-demo .state');
  const sparkPoints = await page.evaluate(() => document.querySelector('#s-fps polyline')?.getAttribute('points')?.split(' ').length || 0);
  // Recent faces: the first card's picture loads, its detail view opens
  // with the frame, the box and the landmarks drawn.
  await page.waitForFunction(() => {
    const img = document.querySelector('#recent .ev img');
    return img && img.complete && img.naturalWidth > 0;
  }, null, { timeout: 20000 });
  await page.click('#recent .ev');
  await page.waitForFunction(() => {
    const img = document.querySelector('#detail.open img');
    return img && img.complete && img.naturalWidth > 0;
  }, null, { timeout: 10000 });
  const detail = await page.evaluate(() => ({
    frame: [document.querySelector('#detail img').naturalWidth, document.querySelector('#detail img').naturalHeight],
    points: document.querySelectorAll('#detail svg circle').length,
    boxes: document.querySelectorAll('#detail svg rect').length,
    facts: document.querySelector('#detail .facts').textContent,
  }));
  await page.screenshot({ path: shot.replace(/\.png$/, '-detail.png') });
  await page.click('#detail-close');
  // The tile's last-hour histograms have data.
  await page.waitForFunction(() => [...document.querySelectorAll('#cam-demo .hist.width .bars i')]
    .reduce((a, i) => a + Number(i.dataset.count), 0) > 0, null, { timeout: 10000 });
  const hist = await page.evaluate(() => ['width', 'quality'].map(k =>
    [...document.querySelectorAll(`#cam-demo .hist.${k} .bars i`)].reduce((a, i) => a + Number(i.dataset.count), 0)));
  // The demo's five people, each in the strip.
  await page.waitForFunction(() => {
    const imgs = [...document.querySelectorAll('#recent .ev img')];
    return imgs.length >= 5 && imgs.every(i => i.complete && i.naturalWidth > 0);
  }, null, { timeout: 30000 })
    .catch(async e => fail(`${await page.evaluate(() => document.querySelectorAll('#recent .ev').length)} cards in the strip: ${e.message}`));
  const strip = await page.evaluate(() => ({
    cards: document.querySelectorAll('#recent .ev').length,
    maxLagMs: Number(document.querySelector('#recent').dataset.maxLagMs),
    lags: [...document.querySelectorAll('#recent .ev')].map(c => Number(c.dataset.lagMs)),
    loaded: [...document.querySelectorAll('#recent .ev img')].filter(i => i.complete && i.naturalWidth > 0).length,
  }));
  await page.screenshot({ path: shot });
  // Phone width: nothing wider than the screen (the strip scrolls inside).
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(200);
  const phoneOverflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  await page.screenshot({ path: shot.replace(/\.png$/, '-phone.png') });
  console.log(JSON.stringify({ frames1, frames2, fps, preview: size, state, sparkPoints, detail, hist, strip, phoneOverflow }));
} finally {
  await browser.close();
}
