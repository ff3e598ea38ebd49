"""The embedded admin's pages beyond home and the builder: a segment, playbooks, theme snippets,
settings, and sync & data. Thin views: they look rows up through `request.shop` (another shop's
segment is a 404) and hand selectors' and services' answers to the templates; edits go through
the JSON API from the page's script."""
