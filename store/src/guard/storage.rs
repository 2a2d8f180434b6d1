//! The guard as a [`StorageLayer`]: each write admitted (or refused at once
//! while the store cannot write) and its outcome observed, each read passed
//! to the backend in force and its outcome observed; the calls it treats
//! specially (a commit group, the flush with its high-water mark, the seal,
//! its own health and damage count) below.

use super::*;
use crate::layer::{StorageLayer, WriteKind};

impl StorageLayer for GuardedStorage {
    type Below<'a> = Arc<dyn Storage>;

    fn below(&self) -> Result<Arc<dyn Storage>, StoreError> {
        self.inner()
    }

    fn read<T>(
        &self,
        call: impl FnOnce(&dyn Storage) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let inner = self.inner()?;
        let r = engine_call(|| call(&*inner));
        drop(inner);
        self.observe_read(r)
    }

    fn write<T>(
        &self,
        _kind: WriteKind,
        call: impl FnOnce(&dyn Storage) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.admit_write()?;
        let inner = self.inner()?;
        let r = engine_call(|| call(&*inner));
        // Released before `observe`, which may reopen the backend and
        // waits for every handle on it to be gone.
        drop(inner);
        self.observe(r)
    }

    fn commit_issuances(&self, batch: &[Issuance]) -> Vec<Result<(), StoreError>> {
        let storage = match self.admit_write().and_then(|()| self.inner()) {
            Ok(s) => s,
            Err(e) => return batch.iter().map(|_| Err(e.repeat())).collect(),
        };
        let results = match engine_call(|| Ok(storage.commit_issuances(batch))) {
            Ok(results) => results,
            Err(e) => batch.iter().map(|_| Err(e.repeat())).collect(),
        };
        drop(storage);
        // A group that met a damaged record (or a contained engine panic)
        // is noted as damage, like a read.
        if let Some(Err(e)) = results
            .iter()
            .find(|r| matches!(r, Err(StoreError::Corrupt { .. })))
        {
            let _ = self.observe_read::<()>(Err(e.repeat()));
        }
        match results
            .iter()
            .find(|r| matches!(r, Err(StoreError::Unavailable(_))))
        {
            Some(unreachable) => self.observe_reach(unreachable, true),
            None => self.observe_reach(&Ok::<(), StoreError>(()), true),
        }
        if let Some(Err(StoreError::Full(reason))) = results
            .iter()
            .find(|r| matches!(r, Err(StoreError::Full(_))))
        {
            self.write_failed(reason);
        }
        results
    }

    fn flush(&self) -> Result<(), StoreError> {
        // Everything committed before the flush starts is durable after
        // it: that many entries is what the store must hold from now on.
        let high_water = high_water_path(&self.recovery_kind);
        self.admit_write()?;
        let size = high_water
            .as_ref()
            .and_then(|_| Storage::audit_head(self).ok().map(|(size, _)| size));
        self.write(WriteKind::Bookkeeping, |s| s.flush())?;
        if let (Some(path), Some(size)) = (high_water, size) {
            record_high_water(&path, size);
        }
        Ok(())
    }

    fn set_record_seal(&self, seal: Arc<crate::RecordSeal>) {
        if let Ok(inner) = self.inner() {
            inner.set_record_seal(Arc::clone(&seal));
        }
        // Kept for a reopened backend.
        let _ = self.seal.set(seal);
    }

    fn damaged_records(&self) -> usize {
        self.damaged.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    fn write_health(&self) -> WriteHealth {
        let due = matches!(&*self.lock_state(), State::Refusing { next_probe, .. } if Instant::now() >= *next_probe);
        if due {
            self.probe();
        }
        let was_unreachable = self
            .unreachable
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some();
        if was_unreachable {
            // Nothing else may ask the store meanwhile: look once (the
            // audit head is never cached).
            let looked = self.inner().and_then(|s| s.audit_head());
            self.observe_reach(&looked, true);
        }
        let unreachable = self
            .unreachable
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match &*self.lock_state() {
            State::Writable => match unreachable {
                Some(why) => WriteHealth::Refusing(format!("unreachable: {why}")),
                None => WriteHealth::Writable,
            },
            State::ReadOnly(reason) => WriteHealth::Refusing(format!("read-only: {reason}")),
            State::Refusing { error, .. } => WriteHealth::Refusing(error.clone()),
        }
    }
}
