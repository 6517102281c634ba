// Cents to text, as the server's shop/money formats them (Intl does the grouping).
const LOCALES = { EUR: 'de-DE', USD: 'en-US', GBP: 'en-GB', CHF: 'de-CH' };

export function formatMoney(minor, currency) {
  return new Intl.NumberFormat(LOCALES[currency] ?? 'en', { style: 'currency', currency })
    .format(minor / 100);
}
