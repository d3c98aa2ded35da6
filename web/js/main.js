// Picks the page for the current path; the server answers every page path with
// the same index.html. Navigation between pages is by plain links.

import { el, showError } from './dom.js';
import { hasEndpoint } from './api.js';
import * as jobs from './jobs.js';
import * as job from './job.js';
import * as compare from './compare.js';
import * as newJob from './new.js';

const routes = [
  [/^\/$/, 'jobs', (view) => jobs.render(view)],
  [/^\/jobs\/([^/]+)$/, 'jobs', (view, id) => job.render(view, decodeURIComponent(id))],
  [/^\/compare$/, 'compare', (view) => compare.render(view)],
  [/^\/new$/, 'new', (view) => newJob.render(view)],
  [/^\/sweeps(?:\/([^/]+))?$/, 'sweeps', (view) => sweepsPlaceholder(view)],
];

function sweepsPlaceholder(view) {
  view.replaceChildren(el('h1', { text: 'Sweeps' }),
    el('p', { class: 'muted', text: 'Sweeps are not available on this server yet.' }));
}

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
  hasEndpoint('/v1/sweeps?limit=1').then((yes) => { document.querySelector('[data-nav="sweeps"]').hidden = !yes; });
  try {
    await page(view, ...path.match(re).slice(1));
  } catch (err) {
    showError(err);
    throw err;
  }
}

main();
