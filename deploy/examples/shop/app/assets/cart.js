// The cart lives in the browser (localStorage): SKU -> quantity.
const KEY = 'shop.cart';

export class Cart {
  constructor(storage = window.localStorage) {
    this.storage = storage;
    this.items = JSON.parse(storage.getItem(KEY) ?? '{}');
  }

  add(sku) {
    this.items[sku] = (this.items[sku] ?? 0) + 1;
    this.storage.setItem(KEY, JSON.stringify(this.items));
  }

  count() {
    return Object.values(this.items).reduce((a, b) => a + b, 0);
  }

  total(prices) {
    return Object.entries(this.items).reduce((sum, [sku, n]) => sum + (prices[sku] ?? 0) * n, 0);
  }
}
