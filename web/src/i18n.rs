//! English and Japanese: the language a request asks for (`?lang=ja`, else
//! `Accept-Language`), the words of the pages, and dates in ISO form with
//! the time relative to now.

/// A page language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Lang {
    /// English (the default).
    En,
    /// Japanese.
    Ja,
}

/// English → Japanese. A phrase missing here is shown in English.
const JA: &[(&str, &str)] = &[
    ("Trust label", "セキュリティラベル"),
    ("Device", "機器"),
    ("Model", "型式"),
    ("Sector", "分野"),
    ("Manufacturer", "製造者"),
    ("Serial", "製造番号"),
    ("Firmware", "ファームウェア"),
    ("Firmware range", "ファームウェア範囲"),
    ("Trust level", "セキュリティレベル"),
    ("Status", "状態"),
    ("since", "以降"),
    ("Reason", "理由"),
    ("Reason class", "理由の区分"),
    ("Support period", "サポート期間"),
    ("supported until", "サポート終了日"),
    ("not declared", "申告なし"),
    ("Evaluations", "評価"),
    ("Scheme", "評価制度"),
    ("Result", "結果"),
    ("Certificate number", "認証番号"),
    ("Valid until", "有効期限"),
    ("self-assessed", "自己適合宣言"),
    ("third party", "第三者評価"),
    ("withdrawn", "取り下げ"),
    ("expired", "期限切れ"),
    ("none", "なし"),
    ("Last checked", "最終確認"),
    ("Last change", "最終変更"),
    ("active", "有効"),
    ("restricted", "制限中"),
    ("suspended", "一時停止"),
    ("revoked", "失効"),
    ("retired", "廃止"),
    ("certified", "認証済み"),
    ("provisional", "暫定"),
    ("Not found", "見つかりません"),
    ("Too many requests", "リクエストが多すぎます"),
    ("QR code for this page", "このページのQRコード"),
    ("Registered model", "登録型式"),
    (
        "Devices of this model are checked live against the trust database.",
        "この型式の機器は信頼データベースで随時確認されます。",
    ),
    (
        "This page shows the live state of the device in the trust database.",
        "このページは信頼データベース上の機器の現在の状態を示します。",
    ),
    (
        "Level 1: identified only. The device is enrolled; nothing about its security was evaluated.",
        "レベル1: 識別のみ。機器は登録済みですが、セキュリティは評価されていません。",
    ),
    (
        "Level 2: basic. Authenticated software updates; no third-party evaluation.",
        "レベル2: 基本。認証されたソフトウェア更新があり、第三者評価はありません。",
    ),
    (
        "Level 3: evaluated. A recognised scheme evaluated the model.",
        "レベル3: 評価済み。認められた制度で型式が評価されています。",
    ),
    (
        "Level 4: high. A strong evaluation and keys kept in protected hardware.",
        "レベル4: 高。厳格な評価と保護されたハードウェア内の鍵。",
    ),
    (
        "Level 5: very high. The strongest evaluation, a secure element and a long support period.",
        "レベル5: 最高。最も厳格な評価、セキュアエレメント、長いサポート期間。",
    ),
    (
        "The device may not be trusted at all now.",
        "現在、この機器は信頼されません。",
    ),
    (
        "The device is trusted at a lower level than its certificate states.",
        "この機器は証明書の記載より低いレベルで信頼されています。",
    ),
    ("revocation", "失効"),
    ("anomaly", "異常検知"),
    ("model registry", "型式登録"),
    ("downgrade", "レベル引き下げ"),
    ("operator change", "運用者による変更"),
    ("enrollment", "登録"),
    ("transfer", "移管"),
    ("just now", "たった今"),
    ("Language", "言語"),
    ("Console", "コンソール"),
    ("Sign in", "ログイン"),
    ("Sign out", "ログアウト"),
    ("Level distribution", "レベル分布"),
    ("Recent changes", "最近の変更"),
    ("Revocations", "失効"),
    ("Anomaly reports", "異常報告"),
    ("Model registry", "型式登録簿"),
    ("Freshness", "鮮度"),
    ("Audit log", "監査ログ"),
    ("Systems", "システム"),
    ("Combined level", "総合レベル"),
    ("Over the last 30 days", "過去30日間"),
    ("Effective level", "実効レベル"),
    ("Cap source", "制限の起点"),
    ("Cap path", "制限の経路"),
    ("Member", "構成機器"),
    ("System", "システム"),
    ("Download CSV", "CSVをダウンロード"),
    ("Next page", "次のページ"),
    ("Previous page", "前のページ"),
    ("Filter", "絞り込み"),
    ("devices", "台"),
];

impl Lang {
    /// `?lang=` wins; then the first of `Accept-Language` we speak; English.
    pub fn choose(query_lang: Option<&str>, accept_language: Option<&str>) -> Self {
        if let Some(l) = query_lang {
            return if l.eq_ignore_ascii_case("ja") {
                Self::Ja
            } else {
                Self::En
            };
        }
        for range in accept_language.unwrap_or_default().split(',') {
            let tag = range.split(';').next().unwrap_or_default().trim();
            let primary = tag.split('-').next().unwrap_or_default();
            if primary.eq_ignore_ascii_case("ja") {
                return Self::Ja;
            }
            if primary.eq_ignore_ascii_case("en") {
                return Self::En;
            }
        }
        Self::En
    }

    /// The BCP 47 tag for `<html lang>`.
    pub fn tag(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::Ja => "ja",
        }
    }

    /// `english` in this language.
    pub fn t(self, english: &'static str) -> &'static str {
        self.t_any(english)
    }

    /// `english` in this language, for words known only at run time.
    pub fn t_any(self, english: &str) -> &str {
        match self {
            Self::En => english,
            Self::Ja => JA
                .iter()
                .find(|(en, _)| *en == english)
                .map_or(english, |(_, ja)| ja),
        }
    }

    /// The meaning of a trust level in words.
    pub fn level_meaning(self, level: u8) -> &'static str {
        self.t(match level {
            5 => "Level 5: very high. The strongest evaluation, a secure element and a long support period.",
            4 => "Level 4: high. A strong evaluation and keys kept in protected hardware.",
            3 => "Level 3: evaluated. A recognised scheme evaluated the model.",
            2 => "Level 2: basic. Authenticated software updates; no third-party evaluation.",
            _ => "Level 1: identified only. The device is enrolled; nothing about its security was evaluated.",
        })
    }

    /// `at` (unix seconds) as ISO 8601 UTC with the time relative to `now`.
    pub fn date(self, at: i64, now: i64) -> String {
        format!("{} ({})", iso(at), self.relative(now.saturating_sub(at)))
    }

    fn relative(self, ago: i64) -> String {
        let (n, unit_en, unit_ja) = match ago.unsigned_abs() {
            s if s < 60 => return self.t("just now").to_owned(),
            s if s < 3600 => (s / 60, "minute", "分"),
            s if s < 86_400 => (s / 3600, "hour", "時間"),
            s if s < 86_400 * 365 => (s / 86_400, "day", "日"),
            s => (s / (86_400 * 365), "year", "年"),
        };
        match (self, ago >= 0) {
            (Self::En, past) => {
                let plural = if n == 1 { "" } else { "s" };
                if past {
                    format!("{n} {unit_en}{plural} ago")
                } else {
                    format!("in {n} {unit_en}{plural}")
                }
            }
            (Self::Ja, true) => format!("{n}{unit_ja}前"),
            (Self::Ja, false) => format!("{n}{unit_ja}後"),
        }
    }
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn iso(at: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(at)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("unix time {at}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_wins_then_accept_language_then_english() {
        assert_eq!(Lang::choose(Some("ja"), Some("en")), Lang::Ja);
        assert_eq!(Lang::choose(Some("en"), Some("ja")), Lang::En);
        assert_eq!(
            Lang::choose(None, Some("fr-FR, ja;q=0.8, en;q=0.5")),
            Lang::Ja
        );
        assert_eq!(Lang::choose(None, Some("en-GB,ja")), Lang::En);
        assert_eq!(Lang::choose(None, None), Lang::En);
        assert_eq!(Lang::choose(Some("xx"), None), Lang::En);
    }

    #[test]
    fn dates_are_iso_with_relative_time_in_both_languages() {
        let now = 1_800_000_000;
        assert_eq!(
            Lang::En.date(now - 3 * 86_400, now),
            format!("{} (3 days ago)", iso(now - 3 * 86_400))
        );
        assert!(Lang::Ja.date(now - 7200, now).ends_with("(2時間前)"));
        assert!(
            Lang::En
                .date(now + 86_400 * 400, now)
                .ends_with("(in 1 year)")
        );
        assert!(Lang::En.date(now - 10, now).ends_with("(just now)"));
        assert_eq!(iso(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn every_level_has_a_meaning_in_japanese() {
        for level in 1..=5 {
            assert_ne!(Lang::Ja.level_meaning(level), Lang::En.level_meaning(level));
        }
    }
}
