<?php

declare(strict_types=1);

namespace Shop\App;

use Shop\Money\Money;

/** The products on sale: a fixed list, the example has no database. */
final class Catalog
{
    /** @return list<array{sku: string, name: string, price: Money}> */
    public static function products(string $currency): array
    {
        $items = [
            ['KET-01', 'Enamel kettle', 3450],
            ['MUG-02', 'Stoneware mug', 1299],
            ['TEA-03', 'Sencha, 250 g', 899],
            ['BAG-04', 'Canvas tote bag', 1950],
        ];
        return array_map(
            fn (array $i) => ['sku' => $i[0], 'name' => $i[1], 'price' => Money::of($i[2], $currency)],
            $items,
        );
    }
}
