//! The proto forms of caps and evaluations.

use crate::msg;
use time::OffsetDateTime;
use trustca_composition::{CompositionPolicy, Evaluation};

/// The proto form of a cap.
pub fn cap_view(system: &str, effective: u8, cap: &trustca_composition::Cap) -> msg::SystemCap {
    msg::SystemCap {
        system: system.to_owned(),
        effective_level: u32::from(effective),
        source: cap.source.clone(),
        path: cap
            .path
            .iter()
            .map(|h| msg::CapHop {
                from: h.from.clone(),
                to: h.to.clone(),
                operation: h.operation.clone(),
                depth: h.depth.clone(),
                counted_level: u32::from(h.counted.get()),
            })
            .collect(),
        reason: cap.reason.clone(),
    }
}

/// The proto form of an evaluation.
pub fn evaluation_view(
    e: &Evaluation,
    policy: &CompositionPolicy,
    at: OffsetDateTime,
) -> msg::SystemEvaluation {
    let combined = e.combined.as_ref();
    msg::SystemEvaluation {
        system: e.system.clone(),
        system_version: e.system_version,
        policy_version: format!(
            "composition@{}+{}",
            policy.version,
            policy.trust().version()
        ),
        combined_level: combined.map(|c| u32::from(c.level.get())).unwrap_or(0),
        combined_set_by: combined.map(|c| c.set_by.clone()).unwrap_or_default(),
        combined_reason: combined.map(|c| c.reason.clone()).unwrap_or_default(),
        members: e
            .members
            .values()
            .map(|m| msg::MemberLevel {
                identity: m.urn.clone(),
                sector: m.sector.to_string(),
                own_level: u32::from(m.own_level.get()),
                status: m.status,
                effective_level: u32::from(m.effective.get()),
                cap: m
                    .cap
                    .as_ref()
                    .map(|c| cap_view(&e.system, m.effective.get(), c)),
            })
            .collect(),
        evaluated_at: at.unix_timestamp(),
    }
}
