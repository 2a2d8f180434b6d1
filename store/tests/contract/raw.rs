//! Reading and rewriting stored records behind the store's back, as a disk
//! fault or someone with write access to the database (but not to the CA's
//! keys) would. sled and fjall recompute their own checksums on such a
//! write, so the change is exactly what a careful attacker leaves. Every
//! handle on an embedded store must be closed first.

use crate::Backend;

/// The sled database of a store, opened behind its back. The store just
/// closed may still be releasing sled's lock from a background thread for
/// a moment (as `SledStorage::open` allows), more so on a loaded machine.
fn sled_db(dir: &std::path::Path) -> sled::Db {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match trustca_store::raw_sled_config(dir).open() {
            Err(sled::Error::Io(e))
                if e.to_string().starts_with("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            other => return other.unwrap(),
        }
    }
}

/// The fjall database of a store, opened behind its back, and one of its
/// keyspaces (they keep the options they were created with).
fn fjall_space(dir: &std::path::Path, table: &str) -> (fjall::Database, fjall::Keyspace) {
    // The store just closed may still be joining its background threads,
    // which hold its lock for a moment (as `FjallStorage::open` allows).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let db = loop {
        match fjall::Database::builder(dir).open() {
            Err(fjall::Error::Locked) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            other => break other.unwrap(),
        }
    };
    let space = db
        .keyspace(table, fjall::KeyspaceCreateOptions::default)
        .unwrap();
    (db, space)
}

/// The stored bytes of one record (`None`: there is none). `table` is the
/// sled tree or fjall keyspace name: `certificates`, `devices`, `trust` or
/// `blocked_keys`.
pub fn get(b: &Backend, table: &str, key: &[u8]) -> Option<Vec<u8>> {
    match b {
        Backend::Fjall(dir) => {
            let (_db, space) = fjall_space(dir.path(), table);
            space.get(key).unwrap().map(|v| v.to_vec())
        }
        Backend::Sled(dir) => {
            let db = sled_db(dir.path());
            let v = db.open_tree(table).unwrap().get(key).unwrap();
            v.map(|v| v.to_vec())
        }
        Backend::Postgres(url) | Backend::CachedPostgres(url) => {
            let (select, _, _) = sql(table);
            let (rt, client) = pg(url);
            let rows = rt.block_on(client.query(select, &[&Key(key)])).unwrap();
            rows.first().map(|r| r.get::<_, Vec<u8>>(0))
        }
    }
}

/// Writes (`Some`) or deletes (`None`) one record's stored bytes.
pub fn set(b: &Backend, table: &str, key: &[u8], value: Option<Vec<u8>>) {
    match b {
        Backend::Sled(dir) => {
            let db = sled_db(dir.path());
            let tree = db.open_tree(table).unwrap();
            match value {
                Some(v) => tree.insert(key, v).unwrap(),
                None => tree.remove(key).unwrap(),
            };
            db.flush().unwrap();
        }
        Backend::Fjall(dir) => {
            let (db, space) = fjall_space(dir.path(), table);
            match value {
                Some(v) => space.insert(key, v).unwrap(),
                None => space.remove(key).unwrap(),
            }
            db.persist(fjall::PersistMode::SyncAll).unwrap();
        }
        Backend::Postgres(url) | Backend::CachedPostgres(url) => {
            let (_, upsert, delete) = sql(table);
            let (rt, client) = pg(url);
            match &value {
                Some(v) => rt.block_on(client.execute(upsert, &[&Key(key), v])),
                None => rt.block_on(client.execute(delete, &[&Key(key)])),
            }
            .unwrap();
        }
    }
}

/// Deletes a sector's CRL index entry for `serial` (its key in sled and
/// fjall is the sector, a zero byte and the serial; PostgreSQL has two
/// columns).
pub fn delete_revoked(b: &Backend, sector: &str, serial: &[u8]) {
    match b {
        Backend::Sled(_) | Backend::Fjall(_) => {
            let mut key = sector.as_bytes().to_vec();
            key.push(0);
            key.extend_from_slice(serial);
            set(b, "revoked", &key, None);
        }
        Backend::Postgres(url) | Backend::CachedPostgres(url) => {
            let (rt, client) = pg(url);
            let n = rt
                .block_on(client.execute(
                    "DELETE FROM revoked WHERE sector = $1 AND serial = $2",
                    &[&sector, &serial],
                ))
                .unwrap();
            assert_eq!(n, 1);
        }
    }
}

/// One opaque record's stored bytes.
pub fn get_blob(b: &Backend, space: &str, key: &[u8]) -> Option<Vec<u8>> {
    match b {
        Backend::Sled(_) | Backend::Fjall(_) => get(b, "blobs", &blob_key(space, key)),
        Backend::Postgres(url) | Backend::CachedPostgres(url) => {
            let (rt, client) = pg(url);
            let rows = rt
                .block_on(client.query(
                    "SELECT value FROM blobs WHERE space = $1 AND key = $2",
                    &[&space, &key],
                ))
                .unwrap();
            rows.first().map(|r| r.get::<_, Vec<u8>>(0))
        }
    }
}

/// An embedded store's key of an opaque record: the space, a zero byte, the key.
fn blob_key(space: &str, key: &[u8]) -> Vec<u8> {
    let mut full = space.as_bytes().to_vec();
    full.push(0);
    full.extend_from_slice(key);
    full
}

/// Writes (`Some`) or deletes (`None`) one opaque record of `space` (its
/// sled key is the space, a zero byte and the key).
pub fn set_blob(b: &Backend, space: &str, key: &[u8], value: Option<Vec<u8>>) {
    match b {
        Backend::Sled(_) | Backend::Fjall(_) => set(b, "blobs", &blob_key(space, key), value),
        Backend::Postgres(url) | Backend::CachedPostgres(url) => {
            let (rt, client) = pg(url);
            match &value {
                Some(v) => rt.block_on(client.execute(
                    "INSERT INTO blobs (space, key, value) VALUES ($1, $2, $3) \
                     ON CONFLICT (space, key) DO UPDATE SET value = $3",
                    &[&space, &key, v],
                )),
                None => rt.block_on(client.execute(
                    "DELETE FROM blobs WHERE space = $1 AND key = $2",
                    &[&space, &key],
                )),
            }
            .unwrap();
        }
    }
}

/// Rewrites one stored record's bytes in place.
pub fn tamper(b: &Backend, table: &str, key: &[u8], edit: impl Fn(&mut Vec<u8>)) {
    let mut v = get(b, table, key).expect("record to tamper with");
    edit(&mut v);
    set(b, table, key, Some(v));
}

/// Select, upsert and delete statements of a table (by sled tree name).
fn sql(table: &str) -> (&'static str, &'static str, &'static str) {
    match table {
        "certificates" => (
            "SELECT record FROM certificates WHERE serial = $1",
            "UPDATE certificates SET record = $2 WHERE serial = $1",
            "DELETE FROM certificates WHERE serial = $1",
        ),
        "devices" => (
            "SELECT record FROM devices WHERE identity_key = $1",
            "INSERT INTO devices (identity_key, record) VALUES ($1, $2) \
             ON CONFLICT (identity_key) DO UPDATE SET record = $2",
            "DELETE FROM devices WHERE identity_key = $1",
        ),
        "trust" => (
            "SELECT record FROM trust_records WHERE identity_key = $1",
            "INSERT INTO trust_records (identity_key, record) VALUES ($1, $2) \
             ON CONFLICT (identity_key) DO UPDATE SET record = $2",
            "DELETE FROM trust_records WHERE identity_key = $1",
        ),
        "blocked_keys" => (
            "SELECT record FROM blocked_keys WHERE fingerprint = $1",
            "UPDATE blocked_keys SET record = $2 WHERE fingerprint = $1",
            "DELETE FROM blocked_keys WHERE fingerprint = $1",
        ),
        other => panic!("no raw access to {other}"),
    }
}

/// A key as its column wants it: bytes for serials, text for identities.
#[derive(Debug)]
struct Key<'a>(&'a [u8]);

impl tokio_postgres::types::ToSql for Key<'_> {
    fn to_sql(
        &self,
        ty: &tokio_postgres::types::Type,
        out: &mut tokio_postgres::types::private::BytesMut,
    ) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        if *ty == tokio_postgres::types::Type::BYTEA {
            self.0.to_sql(ty, out)
        } else {
            std::str::from_utf8(self.0)?.to_sql(ty, out)
        }
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        <&[u8]>::accepts(ty) || <&str>::accepts(ty)
    }

    tokio_postgres::types::to_sql_checked!();
}

/// A runtime and a connection to `url` driven by it.
fn pg(url: &str) -> (tokio::runtime::Runtime, tokio_postgres::Client) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
    });
    (rt, client)
}
