// The router: which screen a location (#/capture, #/obs/<id>, #/search?q=…) shows.
import { clear } from './dom.js';
import { meView, signInView } from './account.js';
import { actionsView } from './actions.js';
import { captureView } from './capture.js';
import { debriefView } from './debrief.js';
import { searchView } from './search.js';
import { app, chooseStint, renderChrome, view } from './shell.js';
import { stintsView } from './stints.js';
import { observationView, timelineView } from './timeline.js';

// soft: a background refresh (after a sync); it never replaces a screen the user has typed into.
let routing = 0;
function busy() {
  return view.dataset.dirty === '1' || (document.activeElement && view.contains(document.activeElement) && /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName));
}
export async function route(soft = false) {
  if (soft && busy()) return;
  const mine = ++routing;
  const [path, query] = (location.hash.slice(1) || '/capture').split('?');
  const params = new URLSearchParams(query || '');
  const parts = path.split('/').filter(Boolean);
  let el;
  // A link into another stint's list (a search hit: ?stint=…&focus=…) switches to that stint first.
  const inStint = params.get('stint');
  if (app.user && inStint && (!app.stint || app.stint.id !== inStint)) {
    const wanted = app.stints.find((s) => s.id === inStint);
    if (wanted) await chooseStint(wanted);
  }
  if (!app.user) el = signInView();
  else {
    switch (parts[0]) {
      case 'signin': el = signInView(); break;
      case 'timeline': el = await timelineView(); break;
      case 'obs': el = await observationView(parts[1]); break;
      case 'search': el = await searchView(params); break;
      case 'debrief': el = await debriefView(); break;
      case 'actions': el = await actionsView(); break;
      case 'me': el = await meView(); break;
      case 'stints': el = await stintsView(); break;
      default: el = await captureView();
    }
  }
  if (mine !== routing) return; // a later navigation won
  if (soft && busy()) return;
  delete view.dataset.dirty;
  clear(view).append(el);
  view.dataset.route = app.user ? parts[0] || 'capture' : 'signin';
  renderChrome();
  const focus = params.get('focus');
  const target = focus && !soft ? [...view.querySelectorAll('[data-focus]')].find((x) => x.dataset.focus === focus) : null;
  if (target) {
    target.setAttribute('aria-current', 'true');
    target.style.outline = '3px solid #5fb49c';
    target.scrollIntoView({ block: 'center' });
  }
  if (!document.body.dataset.ready) performance.mark('fieldbook-interactive');
  document.body.dataset.ready = '1';
}
