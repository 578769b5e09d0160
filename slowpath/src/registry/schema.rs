//! The registry's migrations (component `registry` of the store). Append, never edit.

/// Migrations in order; `MIGRATIONS[i]` takes the schema from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE isp (
        name  TEXT PRIMARY KEY,
        label INTEGER
    );
    CREATE TABLE isp_dhcp_server (
        isp      TEXT NOT NULL REFERENCES isp(name) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        addr     TEXT NOT NULL,
        PRIMARY KEY (isp, position)
    );
    CREATE TABLE subscriber (
        mac           TEXT PRIMARY KEY,
        isp           TEXT NOT NULL REFERENCES isp(name),
        customer_id   TEXT NOT NULL,
        password_hash TEXT,
        status        TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
        created       INTEGER NOT NULL
    );
    CREATE INDEX subscriber_isp ON subscriber(isp);
    CREATE TABLE binding (
        mac     TEXT PRIMARY KEY REFERENCES subscriber(mac) ON DELETE CASCADE,
        isp     TEXT NOT NULL,
        ipv4    TEXT NOT NULL,
        expires INTEGER NOT NULL,
        server  TEXT NOT NULL,
        port    INTEGER NOT NULL,
        vlan    INTEGER NOT NULL,
        inner_vlan INTEGER NOT NULL DEFAULT 0,
        updated INTEGER NOT NULL
    );
    CREATE TABLE refusal (
        id     INTEGER PRIMARY KEY,
        at     INTEGER NOT NULL,
        mac    TEXT NOT NULL,
        isp    TEXT,
        reason TEXT NOT NULL
    );
    CREATE INDEX refusal_at ON refusal(at);
",
    "
    -- Which MACs joined or left the registry, in order, whoever wrote it (the CLI, an import,
    -- the daemon): a running gateway follows it to keep its workers' registered filter.
    CREATE TABLE subscriber_change (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        mac TEXT NOT NULL
    );
    CREATE TRIGGER subscriber_added AFTER INSERT ON subscriber
        BEGIN INSERT INTO subscriber_change (mac) VALUES (NEW.mac); END;
    CREATE TRIGGER subscriber_removed AFTER DELETE ON subscriber
        BEGIN INSERT INTO subscriber_change (mac) VALUES (OLD.mac); END;
    CREATE TRIGGER subscriber_renamed AFTER UPDATE OF mac ON subscriber
        BEGIN
            INSERT INTO subscriber_change (mac) VALUES (OLD.mac);
            INSERT INTO subscriber_change (mac) VALUES (NEW.mac);
        END;
",
    "
    -- How far each ISP has been told of its refusals (the last refusal id its webhook
    -- answered 2xx for): the notifier resumes there after a restart, and never sends an ISP
    -- the refusals from before its webhook was configured.
    CREATE TABLE refusal_notice (
        isp     TEXT PRIMARY KEY,
        last_id INTEGER NOT NULL
    );
",
];
