//! Administration helpers for deployments and tests: creating and
//! dropping databases on a PostgreSQL server.
use super::{PgStorage, StoreError, pg_error};

/// Creates the database `name` on the server at `server_url` (a URL
/// without a database name, e.g. `postgres://trustca@127.0.0.1:5432`)
/// and returns the URL of the new database.
pub fn create_database(server_url: &str, name: &str) -> Result<String, StoreError> {
    check_name(name)?;
    admin_sql(server_url, &[format!("CREATE DATABASE {name}")], name)
}

/// Like [`create_database`], with the database's files in a new
/// tablespace (also called `name`) at `location`, a directory the
/// PostgreSQL server's user owns: for tests that fill its file system.
pub fn create_database_in(
    server_url: &str,
    name: &str,
    location: &std::path::Path,
) -> Result<String, StoreError> {
    check_name(name)?;
    let location = location
        .to_str()
        .filter(|l| !l.contains('\''))
        .ok_or_else(|| StoreError::Backend("tablespace location must be plain UTF-8".into()))?;
    // One statement at a time: neither may run in a transaction block.
    admin_sql(
        server_url,
        &[
            format!("CREATE TABLESPACE {name} LOCATION '{location}'"),
            format!("CREATE DATABASE {name} TABLESPACE {name}"),
        ],
        name,
    )
}

/// Drops the database `name` and the tablespace of the same name that
/// [`create_database_in`] made, disconnecting its sessions.
pub fn drop_database_in(server_url: &str, name: &str) -> Result<(), StoreError> {
    check_name(name)?;
    admin_sql(
        server_url,
        &[
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            format!("DROP TABLESPACE IF EXISTS {name}"),
        ],
        name,
    )
    .map(|_| ())
}

/// Lets the database `name` accept connections or not; refusing also
/// ends its open sessions (a database gone away, for tests).
pub fn allow_connections(server_url: &str, name: &str, allowed: bool) -> Result<(), StoreError> {
    check_name(name)?;
    let mut statements = vec![format!("ALTER DATABASE {name} ALLOW_CONNECTIONS {allowed}")];
    if !allowed {
        statements.push(format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        ));
    }
    admin_sql(server_url, &statements, name).map(|_| ())
}

/// The PostgreSQL server's data directory (whose owner is the user
/// the server runs as).
pub fn data_directory(server_url: &str) -> Result<std::path::PathBuf, StoreError> {
    let base = server_url.trim_end_matches('/');
    let admin = PgStorage::bare(&format!("{base}/postgres"))?;
    admin.run(|h| {
        let client = admin.client(h)?;
        h.block_on(client.query_one("SHOW data_directory", &[]))
            .map(|row| std::path::PathBuf::from(row.get::<_, String>(0)))
            .map_err(|e| pg_error(&admin.target, e))
    })
}

fn check_name(name: &str) -> Result<(), StoreError> {
    if name.is_empty()
        || name.len() > 63
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(StoreError::Backend(format!(
            "database name {name:?} must be 1-63 characters of a-z, 0-9 and _"
        )));
    }
    Ok(())
}

/// Runs `statements` in order on the server's `postgres` database;
/// returns the URL of the database `name`.
fn admin_sql(server_url: &str, statements: &[String], name: &str) -> Result<String, StoreError> {
    let base = server_url.trim_end_matches('/');
    let admin = PgStorage::bare(&format!("{base}/postgres"))?;
    admin.run(|h| {
        let client = admin.client(h)?;
        statements.iter().try_for_each(|sql| {
            h.block_on(client.batch_execute(sql))
                .map_err(|e| pg_error(&admin.target, e))
        })
    })?;
    Ok(format!("{base}/{name}"))
}

/// Overwrites the recorded schema version (tests of the refusal of a
/// newer schema).
pub fn set_schema_version(url: &str, version: i32) -> Result<(), StoreError> {
    let store = PgStorage::bare(url)?;
    store.run(|h| {
        let client = store.client(h)?;
        h.block_on(client.execute("UPDATE trustca_schema SET version = $1", &[&version]))
            .map(|_| ())
            .map_err(|e| pg_error(&store.target, e))
    })
}
