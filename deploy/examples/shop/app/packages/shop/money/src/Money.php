<?php

declare(strict_types=1);

namespace Shop\Money;

/**
 * An amount in minor units (cents) of a currency: integers, so 0.1 + 0.2 is 0.3.
 * Formatting is done here rather than with ext-intl, which would add ICU (~35 MB) to
 * the runtime image for three currencies.
 */
final class Money
{
    /** symbol, before the number?, decimal separator, thousands separator */
    private const FORMATS = [
        'EUR' => ['€', false, ',', '.'],
        'USD' => ['$', true, '.', ','],
        'GBP' => ['£', true, '.', ','],
        'CHF' => ['CHF ', true, '.', "'"],
    ];

    public function __construct(public readonly int $minor, public readonly string $currency)
    {
        if (!isset(self::FORMATS[$currency])) {
            throw new \InvalidArgumentException("unknown currency $currency");
        }
    }

    public static function of(int $minor, string $currency): self
    {
        return new self($minor, $currency);
    }

    public function plus(self $other): self
    {
        $this->sameCurrency($other);
        return new self($this->minor + $other->minor, $this->currency);
    }

    public function times(int $quantity): self
    {
        return new self($this->minor * $quantity, $this->currency);
    }

    /** e.g. "19,99 €" (EUR) or "$1,234.50" (USD) */
    public function format(): string
    {
        [$symbol, $before, $decimal, $thousands] = self::FORMATS[$this->currency];
        $number = number_format(abs($this->minor) / 100, 2, $decimal, $thousands);
        $sign = $this->minor < 0 ? '-' : '';
        return $before ? "$sign$symbol$number" : "$sign$number\u{a0}$symbol";
    }

    public function __toString(): string
    {
        return $this->format();
    }

    private function sameCurrency(self $other): void
    {
        if ($other->currency !== $this->currency) {
            throw new \InvalidArgumentException("$this->currency and $other->currency do not add up");
        }
    }
}
