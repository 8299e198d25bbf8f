// Opens the faceflow panel in headless Chromium (Debian's, via playwright-core),
// checks that the numbers update and a preview frame arrives, saves a screenshot.
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
  await page.screenshot({ path: shot });
  console.log(JSON.stringify({ frames1, frames2, fps, preview: size, state, sparkPoints }));
} finally {
  await browser.close();
}
