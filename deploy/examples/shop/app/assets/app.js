// Entry point, bundled by esbuild into public/build/app.js.
import { Cart } from './cart.js';
import { formatMoney } from './money.js';

function render(cart, prices, el) {
  const n = cart.count();
  el.textContent = n === 0
    ? 'Cart: empty'
    : `Cart: ${n} item${n === 1 ? '' : 's'}, ${formatMoney(cart.total(prices), el.dataset.currency)}`;
}

document.addEventListener('DOMContentLoaded', () => {
  const el = document.getElementById('cart');
  if (!el) return;
  const cart = new Cart();
  const prices = {};
  for (const li of document.querySelectorAll('.product')) {
    prices[li.dataset.sku] = Number(li.dataset.price);
    li.querySelector('button').addEventListener('click', () => {
      cart.add(li.dataset.sku);
      render(cart, prices, el);
    });
  }
  render(cart, prices, el);
});
