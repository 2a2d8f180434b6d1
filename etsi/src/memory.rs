//! In-memory [`StationDirectory`] and [`CredentialRegister`]: for tests
//! and for a deployment whose stations are loaded at start.

use std::collections::HashMap;
use std::sync::Mutex;

use trustca_v2x::Certificate;

use crate::EtsiError;
use crate::ea::{CredentialRegister, Station, StationDirectory};

/// Stations by canonical identifier.
#[derive(Debug, Default)]
pub struct MemoryStations(Mutex<HashMap<Vec<u8>, Station>>);

impl MemoryStations {
    /// Registers (or replaces) `station` under `its_id`.
    pub fn register(&self, its_id: &[u8], station: Station) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(its_id.to_vec(), station);
        }
    }
}

impl StationDirectory for MemoryStations {
    fn station(&self, its_id: &[u8]) -> Result<Option<Station>, EtsiError> {
        let m = self
            .0
            .lock()
            .map_err(|_| EtsiError::Profile("station directory poisoned".into()))?;
        Ok(m.get(its_id).cloned())
    }
}

/// A recorded credential and its station's canonical identifier.
type Issued = (Certificate, Vec<u8>);

/// Issued credentials by HashedId8.
#[derive(Debug, Default)]
pub struct MemoryCredentials(Mutex<HashMap<[u8; 8], Issued>>);

impl MemoryCredentials {
    /// How many credentials were recorded.
    pub fn len(&self) -> usize {
        self.0.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// Whether none was recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl CredentialRegister for MemoryCredentials {
    fn record(&self, ec: &Certificate, its_id: &[u8]) -> Result<(), EtsiError> {
        let mut m = self
            .0
            .lock()
            .map_err(|_| EtsiError::Profile("credential register poisoned".into()))?;
        m.insert(ec.hashed_id8(), (ec.clone(), its_id.to_vec()));
        Ok(())
    }

    fn find(&self, id: [u8; 8]) -> Result<Option<Issued>, EtsiError> {
        let m = self
            .0
            .lock()
            .map_err(|_| EtsiError::Profile("credential register poisoned".into()))?;
        Ok(m.get(&id).cloned())
    }
}
