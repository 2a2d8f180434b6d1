//! Containing the storage engine's panics.
//!
//! sled does not always return an error for damaged files: a store file cut
//! short makes it index past the end of a segment and panic inside its page
//! cache (`pagecache/segment.rs: index out of bounds`), at open or on the
//! first read of the damaged page. [`GuardedStorage`](crate::GuardedStorage),
//! the one door every server and offline command opens a store through,
//! runs each call into the engine through [`engine_call`], which turns such
//! a panic into [`StoreError::Corrupt`] — a plain sentence naming the store,
//! DATA_LOSS for a client, exit 1 for a command — instead of a crash.
//! [`quiet_engine_panics`] keeps the contained panic's own message off
//! stderr, since the error reports it once in words.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

use crate::StoreError;

/// Runs one call into the storage engine; a panic inside it becomes
/// [`StoreError::Corrupt`]. The engine's state after such a panic is not
/// trusted for writes: callers refuse them (the guard's read-only state).
pub(crate) fn engine_call<T>(f: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let detail = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into());
        Err(StoreError::Corrupt {
            key: "pages".into(),
            reason: format!(
                "the storage engine cannot read the store's files ({detail}): they are damaged or cut short"
            ),
        })
    })
}

/// Installs (once) a panic hook that stays silent for panics raised inside
/// the storage engine's code, which [`engine_call`] turns into errors, and
/// hands every other panic to the hook that was there before.
pub fn quiet_engine_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_engine = info.location().is_some_and(|l| {
                let file = l.file();
                ["/sled-", "/fjall-", "/lsm-tree-"]
                    .iter()
                    .any(|engine| file.contains(engine))
            });
            if in_engine {
                tracing::debug!(%info, "storage engine panic contained");
            } else {
                previous(info);
            }
        }));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_a_corrupt_store_error() {
        let v: Vec<u8> = Vec::new();
        let index = v.len() + 3;
        let r: Result<u8, StoreError> = engine_call(|| Ok(v[index]));
        let e = r.unwrap_err();
        assert!(matches!(e, StoreError::Corrupt { .. }), "{e:?}");
        assert!(e.to_string().contains("index out of bounds"), "{e}");
        assert_eq!(engine_call(|| Ok(1)).unwrap(), 1);
    }
}
