<?php

declare(strict_types=1);

// The front controller: nginx sends every request but /build/ here (no other PHP file
// can be executed from the web).
require __DIR__ . '/../vendor/autoload.php';

use Shop\App\App;
use Shop\Router\Response;

try {
    $response = (new App(dirname(__DIR__)))->router()
        ->dispatch($_SERVER['REQUEST_METHOD'] ?? 'GET', $_SERVER['REQUEST_URI'] ?? '/');
} catch (Throwable $e) {
    // The details go to php-fpm's log (the container's output), not to the visitor: a
    // message could quote a setting. A missing .env lands here: 500, so Ferry's test
    // gate fails the deploy instead of shipping a shop without its configuration.
    error_log(sprintf('shop: %s: %s', $e::class, $e->getMessage()));
    $response = new Response(500, "internal error\n");
}
$response->send();
