"""Topic 05, caching with Redis: a products API over a deliberately slow SQL query (`server`, its
`app`, the `products` tables), cache-aside with its key schemes and stores (`aside`, `keys`,
`stores`), the experiments of notebook 05 (`experiments`), lab 05's checks and the question bank."""
