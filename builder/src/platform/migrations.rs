//! The state's schema, as forward-only migrations (`PRAGMA user_version` counts them): each
//! one a step from the schema before it, never edited once released.

/// Forward-only migrations; index + 1 is the schema version they lead to.
pub const MIGRATIONS: &[&str] = &[
    // 1: apps, config, releases, formation, domains, checks, deploys
    "CREATE TABLE apps (
        name TEXT PRIMARY KEY,
        created_at INTEGER NOT NULL,
        deploy_branch TEXT
     );
     CREATE TABLE config (
        app TEXT NOT NULL,            -- '' for global config
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (app, key)
     );
     CREATE TABLE releases (
        app TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
        version INTEGER NOT NULL,
        image TEXT NOT NULL,
        slug_digest TEXT,
        buildpack TEXT,
        process_types TEXT NOT NULL,  -- JSON map type -> command
        source_version TEXT,
        config TEXT NOT NULL,         -- JSON snapshot of the app's config
        description TEXT NOT NULL,
        app_json TEXT,                -- the release's app.json (health checks), if any
        created_at INTEGER NOT NULL,
        status TEXT NOT NULL,         -- pending | succeeded | failed
        PRIMARY KEY (app, version)
     );
     CREATE TABLE formation (
        app TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
        type TEXT NOT NULL,
        quantity INTEGER NOT NULL,
        PRIMARY KEY (app, type)
     );
     CREATE TABLE domains (
        domain TEXT PRIMARY KEY,
        app TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE
     );
     CREATE TABLE settings (
        app TEXT NOT NULL,            -- '' for global settings
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (app, key)
     );
     CREATE TABLE deploys (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        app TEXT NOT NULL,
        release INTEGER,
        started_at INTEGER NOT NULL,
        finished_at INTEGER,
        status TEXT NOT NULL,         -- running | succeeded | failed
        log TEXT NOT NULL DEFAULT ''
     );",
    // 2: builds from git pushes: who runs them (for cancel), which revision and branch
    "ALTER TABLE deploys ADD COLUMN pid INTEGER;
     ALTER TABLE deploys ADD COLUMN source_version TEXT;",
    // 3: domains are stored lowercase (host names are case-insensitive; nginx config is
    //    written from them)
    "UPDATE OR IGNORE domains SET domain = lower(domain);",
    // 4: who may do what: each app's owner (the key that created it), grants (dokku-acl's),
    //    and who made each build and release
    "ALTER TABLE apps ADD COLUMN owner TEXT;
     CREATE TABLE acl (
        app TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
        key TEXT NOT NULL,
        PRIMARY KEY (app, key)
     );
     ALTER TABLE deploys ADD COLUMN pusher TEXT;
     ALTER TABLE releases ADD COLUMN pusher TEXT;",
    // 5: stacks: apps made before there was a choice were built on Debian bookworm, and stay
    //    on it (as Heroku never moves an app's stack by itself); new apps get the default
    "INSERT OR IGNORE INTO settings (app, key, value) SELECT name, 'stack', 'slipway-bookworm' FROM apps;",
    // 6: the scheduler: each task's last due time, and its runs (see platform::scheduler)
    "CREATE TABLE cron_schedule (
        app TEXT NOT NULL,
        job TEXT NOT NULL,
        last_due INTEGER NOT NULL,
        PRIMARY KEY (app, job)
     );
     CREATE TABLE cron_runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        app TEXT NOT NULL,
        job TEXT NOT NULL,
        command TEXT NOT NULL,
        trigger TEXT NOT NULL,        -- schedule | manual
        started_at INTEGER NOT NULL,
        finished_at INTEGER,
        exit_status INTEGER,          -- NULL: running, skipped or failed to start (see note)
        note TEXT,
        output TEXT NOT NULL DEFAULT ''
     );
     CREATE INDEX cron_runs_by_job ON cron_runs (app, job, id);",
    // 7: backing services (platform::services) and the apps linked to them
    "CREATE TABLE services (
        kind TEXT NOT NULL,           -- postgres | redis
        name TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        owner TEXT,                   -- the key that made it (over SSH)
        memory INTEGER,               -- bytes
        exposed_port INTEGER,         -- published on 127.0.0.1 (KIND:expose)
        backup_schedule TEXT,
        backup_dir TEXT,
        backup_keep INTEGER,
        last_backup_at INTEGER,
        last_backup TEXT,             -- ok FILE | failed: WHY
        PRIMARY KEY (kind, name)
     );
     CREATE TABLE service_links (
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        app TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
        var TEXT NOT NULL,            -- the config var it set (DATABASE_URL, ...)
        PRIMARY KEY (kind, name, app),
        FOREIGN KEY (kind, name) REFERENCES services(kind, name) ON DELETE CASCADE
     );",
];
