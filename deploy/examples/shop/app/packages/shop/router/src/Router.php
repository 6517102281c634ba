<?php

declare(strict_types=1);

namespace Shop\Router;

/**
 * Routes `METHOD /path` to a handler; `{name}` in a path matches one segment and is
 * passed to the handler. A handler returns a Response.
 */
final class Router
{
    /** @var array<string, array<string, callable>> pattern => method => handler */
    private array $routes = [];

    public function get(string $path, callable $handler): self
    {
        return $this->add('GET', $path, $handler);
    }

    public function add(string $method, string $path, callable $handler): self
    {
        $pattern = '#^' . preg_replace('#\\\\\{(\w+)\\\\\}#', '(?P<$1>[^/]+)', preg_quote($path, '#')) . '$#';
        $this->routes[$pattern][$method] = $handler;
        if ($method === 'GET') {
            $this->routes[$pattern]['HEAD'] ??= $handler;
        }
        return $this;
    }

    public function dispatch(string $method, string $uri): Response
    {
        $path = rawurldecode(parse_url($uri, PHP_URL_PATH) ?: '/');
        foreach ($this->routes as $pattern => $handlers) {
            if (!preg_match($pattern, $path, $m)) {
                continue;
            }
            $handler = $handlers[$method] ?? null;
            if ($handler === null) {
                return new Response(405, "method not allowed\n", ['Allow' => implode(', ', array_keys($handlers))]);
            }
            return $handler(...array_filter($m, 'is_string', ARRAY_FILTER_USE_KEY));
        }
        return new Response(404, "not found\n");
    }
}
