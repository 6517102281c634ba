<?php

declare(strict_types=1);

namespace Shop\App;

use Shop\DotEnv\DotEnv;
use Shop\Money\Money;
use Shop\Router\Response;
use Shop\Router\Router;

/** The shop's pages. */
final class App
{
    private ?DotEnv $env = null;

    public function __construct(private readonly string $root)
    {
    }

    public function router(): Router
    {
        return (new Router())
            ->get('/', $this->home(...))
            ->get('/healthz', $this->health(...))
            ->get('/env', $this->settings(...))
            ->get('/revision', fn () => new Response(200, $this->revision() . "\n"));
    }

    /** The products, priced in the currency the production .env sets. */
    private function home(): Response
    {
        $currency = $this->env()->get('SHOP_CURRENCY');
        $rows = '';
        $total = Money::of(0, $currency);
        foreach (Catalog::products($currency) as $p) {
            $total = $total->plus($p['price']);
            $rows .= sprintf(
                '<li class="product" data-sku="%s" data-price="%d"><span>%s</span> <b>%s</b> '
                . '<button type="button">Add to cart</button></li>',
                $p['sku'], $p['price']->minor, self::e($p['name']), self::e($p['price']->format()),
            );
        }
        return Response::html($this->page('Shop', <<<HTML
            <h1>Shop</h1>
            <ul id="products">$rows</ul>
            <p>Everything once: <b>{$this->e($total->format())}</b></p>
            <p id="cart" data-currency="{$this->e($currency)}">Cart: empty</p>
            HTML));
    }

    /** Liveness through nginx and php-fpm: answered by PHP, never a static file. */
    private function health(): Response
    {
        $opcache = function_exists('opcache_get_status') ? opcache_get_status(false) : false;
        return Response::json([
            'status' => 'ok',
            'php' => PHP_VERSION,
            'sapi' => PHP_SAPI,
            'opcache' => is_array($opcache) && $opcache['opcache_enabled'],
        ]);
    }

    /** One non-secret setting from .env, and the names (never the values) of the rest. */
    private function settings(): Response
    {
        $env = $this->env();
        return Response::html($this->page('Settings', sprintf(
            '<h1>Settings</h1><p>currency: <b id="currency">%s</b></p><p>keys in .env: %s</p>',
            self::e($env->get('SHOP_CURRENCY')),
            self::e(implode(', ', $env->keys())),
        )));
    }

    /** The production settings, laid over the code by Ferry from the ops' config repo. */
    private function env(): DotEnv
    {
        return $this->env ??= DotEnv::load("$this->root/.env");
    }

    /** The SVN revision the image was built from (the build arg FERRY_REVISION). */
    private function revision(): string
    {
        return trim((string) @file_get_contents("$this->root/REVISION")) ?: 'unknown';
    }

    private function page(string $title, string $body): string
    {
        $v = rawurlencode($this->revision()); // a new revision, new asset URLs: no stale cache
        return <<<HTML
            <!doctype html>
            <html lang="en">
            <meta charset="utf-8">
            <title>$title</title>
            <link rel="stylesheet" href="/build/app.css?v=$v">
            <script type="module" src="/build/app.js?v=$v"></script>
            <main>$body</main>
            <footer>revision <span id="revision">{$this->e($this->revision())}</span></footer>
            </html>
            HTML;
    }

    private static function e(string $s): string
    {
        return htmlspecialchars($s, ENT_QUOTES);
    }
}
