// Handouts: the message inspector's "download the diagram" links. The
// server draws the message's hops as a sequence diagram (A4 pages of SVG,
// or Mermaid text for notes and wikis: src/diagram/); the page only links
// to it, so the download is the same drawing `mailflow diagram` makes.

import { h } from './panels.js';

/** The download links for message `id`. */
export function diagramLinks(id) {
  const base = `/api/messages/${encodeURIComponent(id)}/diagram`;
  return h('p', { class: 'diagram-links' },
    h('a', { class: 'button diagram-download', href: `${base}.svg`, download: '', title: 'A sequence diagram of this message\'s hops, on A4 pages, to print as a handout' },
      h('span', { 'aria-hidden': 'true' }, '⤓ '), 'Diagram (SVG, A4)'),
    ' ',
    h('a', { class: 'button diagram-download-mermaid', href: `${base}.mmd`, download: '', title: 'The same diagram as Mermaid text, for notes and wikis' },
      h('span', { 'aria-hidden': 'true' }, '⤓ '), 'Mermaid'));
}
