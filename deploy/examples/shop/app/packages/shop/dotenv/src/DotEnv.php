<?php

declare(strict_types=1);

namespace Shop\DotEnv;

/**
 * The settings of a `.env` file: `KEY=value` lines, `# comments`, optional `export `,
 * single or double quotes. Values stay in this object: they are not copied into
 * getenv()/$_ENV, where phpinfo() or an error page could show them.
 */
final class DotEnv
{
    /** @param array<string, string> $values */
    private function __construct(private readonly array $values)
    {
    }

    /** @throws MissingFile when the file is absent or unreadable (a missing overlay). */
    public static function load(string $path): self
    {
        $text = is_file($path) ? file_get_contents($path) : false;
        if ($text === false) {
            throw new MissingFile("no settings file at $path");
        }
        return self::parse($text);
    }

    public static function parse(string $text): self
    {
        $values = [];
        foreach (preg_split('/\R/', $text) as $line) {
            $line = trim($line);
            if ($line === '' || $line[0] === '#') {
                continue;
            }
            if (str_starts_with($line, 'export ')) {
                $line = substr($line, 7);
            }
            $eq = strpos($line, '=');
            if ($eq === false) {
                continue;
            }
            $key = trim(substr($line, 0, $eq));
            $value = trim(substr($line, $eq + 1));
            $quote = $value[0] ?? '';
            if (($quote === '"' || $quote === "'") && ($end = strpos($value, $quote, 1)) !== false) {
                $value = substr($value, 1, $end - 1);
            } elseif (($hash = strpos($value, ' #')) !== false) {
                $value = rtrim(substr($value, 0, $hash));
            }
            $values[$key] = $value;
        }
        return new self($values);
    }

    /** @throws MissingKey when the key is absent and no default is given. */
    public function get(string $key, ?string $default = null): string
    {
        return $this->values[$key] ?? $default ?? throw new MissingKey("$key is not set");
    }

    /** @return list<string> the names only: a page may list them, never the values */
    public function keys(): array
    {
        return array_keys($this->values);
    }
}
