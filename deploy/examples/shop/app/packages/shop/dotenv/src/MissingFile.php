<?php

declare(strict_types=1);

namespace Shop\DotEnv;

final class MissingFile extends \RuntimeException
{
}
