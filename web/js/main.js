// Picks the page for the current path; the server answers every page path with
// the same index.html. Navigation between pages is by plain links.

import { el, showError } from './dom.js';
import { signIn, logOut } from './api.js';
import * as jobs from './jobs.js';
import * as job from './job.js';
import * as compare from './compare.js';
import * as newJob from './new.js';
import * as sweeps from './sweeps.js';

const routes = [
  [/^\/$/, 'jobs', (view) => jobs.render(view)],
  [/^\/jobs\/([^/]+)$/, 'jobs', (view, id) => job.render(view, decodeURIComponent(id))],
  [/^\/compare$/, 'compare', (view) => compare.render(view)],
  [/^\/new$/, 'new', (view) => newJob.render(view)],
  [/^\/sweeps(?:\/([^/]+))?$/, 'sweeps', (view, id) => sweeps.render(view, id === undefined ? undefined : decodeURIComponent(id))],
];

async function main() {
  const view = document.getElementById('view');
  const path = location.pathname.replace(/\/+$/, '') || '/';
  const route = routes.find(([re]) => re.test(path));
  if (!route) {
    view.replaceChildren(el('h1', { text: 'Not found' }), el('a', { href: '/', text: 'Back to the jobs' }));
    return;
  }
  const [re, nav, page] = route;
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === nav) a.setAttribute('aria-current', 'page');
  }
  document.title = `${nav === 'new' ? 'New job' : nav[0].toUpperCase() + nav.slice(1)} · lrlab`;
  // With --auth tokens: a token before any data, and a way to drop it.
  if (await signIn() === 'tokens') {
    document.querySelector('header.top nav').append(
      el('button', { type: 'button', class: 'link logout', 'data-testid': 'logout', text: 'Log out', onclick: () => logOut() }));
  }
  try {
    await page(view, ...path.match(re).slice(1));
  } catch (err) {
    showError(err);
    throw err;
  }
}

main();
