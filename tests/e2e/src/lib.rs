//! Ferry's end-to-end tests (in `tests/`): hooks through every stage to production, the
//! staging gate, run order, and builds pushed to the registry, with the services
//! started in-process over the real RabbitMQ, Docker daemons, registry and svnserve.
