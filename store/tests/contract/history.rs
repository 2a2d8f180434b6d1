//! History entries hold their change typed (`DeviceChange`) and are
//! stored as its text, the bytes every build wrote: a typed change reads
//! back as itself, a text of no known form (an older build's) reads back
//! as `Recorded` with the same text, on every backend and through a copy
//! to another store; the audit entry names the change in the same words.

use serde::Serialize;
use trustca_model::{AnomalyKind, FleetEvent, ModelStatus};
use trustca_store::{
    DeviceChange, HistoryEntry, RecordSeal, SledStorage, Storage, StoredRecord, TrustChange,
    TrustStatus, decode_record, encode_record,
};

use crate::{Backend, SEAL_KEY, issuance};

/// A history entry as builds before the typed change encoded it.
#[derive(Serialize)]
struct TextEntry {
    version: u64,
    at: i64,
    actor: String,
    change: String,
    reason: String,
}

fn changed(change: DeviceChange, level: Option<u8>, status: Option<TrustStatus>) -> TrustChange {
    TrustChange {
        identity_key: "a".into(),
        level,
        status,
        actor: "operator:ops".into(),
        change,
        reason: "test".into(),
        audit_kind: "trust.changed".into(),
    }
}

pub(crate) fn history_changes_are_stored_as_their_text_and_read_typed(b: &Backend) {
    let s = b.open();
    s.commit_issuances(&[issuance(1, "a", false)])[0]
        .as_ref()
        .unwrap();
    let older = "suspended: hems/acme/hub firmware 1.0-2.0 (suspended v3)";
    let changes = [
        changed(DeviceChange::LevelSet { from: 3, to: 2 }, Some(2), None),
        changed(
            DeviceChange::AnomalySuspended {
                anomaly: AnomalyKind::AuthBurst,
            },
            None,
            Some(TrustStatus::Suspended),
        ),
        changed(DeviceChange::Recorded(older.into()), None, None),
        // A known form handed in as text is read as its variant.
        changed(
            DeviceChange::Recorded("restored".into()),
            None,
            Some(TrustStatus::Active),
        ),
        changed(
            DeviceChange::ModelMoved {
                event: FleetEvent::Level,
                model: "automotive/acme/m firmware 1.0".into(),
                levels: Some((2, 1)),
                model_status: ModelStatus::Withdrawn,
                model_version: 4,
            },
            Some(1),
            None,
        ),
    ];
    for c in &changes {
        s.apply_trust_changes(std::slice::from_ref(c), 10).unwrap();
    }
    let history = s.history("a").unwrap();
    let read: Vec<DeviceChange> = history.iter().map(|h| h.change.clone()).collect();
    assert_eq!(
        read,
        [
            DeviceChange::Enrolled { level: 3 },
            changes[0].change.clone(),
            changes[1].change.clone(),
            DeviceChange::Recorded(older.into()),
            DeviceChange::Restored,
            changes[4].change.clone(),
        ]
    );
    // The stored bytes are those of the text: what older builds wrote
    // reads back, and what this build writes older builds can read.
    for h in &history {
        let text = TextEntry {
            version: h.version,
            at: h.at,
            actor: h.actor.clone(),
            change: h.change.to_string(),
            reason: h.reason.clone(),
        };
        let bytes = encode_record(&text).unwrap();
        assert_eq!(encode_record(h).unwrap(), bytes);
        assert_eq!(&decode_record::<HistoryEntry>(&bytes).unwrap(), h);
    }
    // The audit entry names the change in the history's words.
    let entries = s.audit_entries(0, 100).unwrap();
    let details: Vec<String> = entries
        .iter()
        .filter(|e| e.kind == "trust.changed")
        .map(|e| {
            let detail: serde_json::Value = serde_json::from_str(&e.detail).unwrap();
            detail["change"].as_str().unwrap().to_owned()
        })
        .collect();
    let texts: Vec<String> = read[1..].iter().map(ToString::to_string).collect();
    assert_eq!(details, texts);
    assert_eq!(texts[0], "level 3 -> 2");
    assert_eq!(texts[1], "suspended (anomaly auth-burst)");
    // A copy to another store keeps every entry as it was.
    let copy_dir = tempfile::tempdir().unwrap();
    let copy = SledStorage::open(copy_dir.path()).unwrap();
    let mut records = Vec::new();
    s.export(&mut |r| {
        records.push(r);
        Ok(())
    })
    .unwrap();
    assert!(
        records
            .iter()
            .any(|r| matches!(r, StoredRecord::History(k, h) if k == "a" && h.change == DeviceChange::Recorded(older.into())))
    );
    copy.set_record_seal(std::sync::Arc::new(RecordSeal::new(&SEAL_KEY)));
    trustca_store::copy_store(s.as_ref(), &copy, 7, &mut |_| {}).unwrap();
    assert_eq!(copy.history("a").unwrap(), history);
}
