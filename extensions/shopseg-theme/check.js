// `npm run lint`: Shopify's theme-check over this folder. The shopify.extension.toml at the root makes
// it pick theme-check:theme-app-extension. Prints the offenses as JSON; exits 1 on any error or warning.
const path = require('node:path');
const { check } = require('@shopify/theme-check-node');

const ERROR = 0;
const WARNING = 1;

check(path.resolve(__dirname)).then(
  (offenses) => {
    const found = offenses.map(({ check, severity, uri, message, start }) => ({
      check, severity, file: path.relative(__dirname, new URL(uri).pathname), line: start.line + 1, message,
    }));
    console.log(JSON.stringify(found, null, 2));
    process.exit(found.some((o) => o.severity === ERROR || o.severity === WARNING) ? 1 : 0);
  },
  (error) => {
    console.error(error);
    process.exit(2);
  },
);
