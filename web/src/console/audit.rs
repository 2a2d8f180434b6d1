//! The audit log page: the newest signed tree head and the one before it,
//! each signature checked against the audit key, and the RFC 9162
//! consistency proof between them. The proof is checked twice: here, and
//! in the browser by a small inline script (allowed by its hash in the
//! CSP) that recomputes it with WebCrypto SHA-256 from the values printed
//! on the page, so an auditor need not take the server's word for it.
//! Also the freshness of the CRL and snapshot files.

use std::fmt::Write as _;
use std::path::Path;

use trustca_audit::{ConsistencyProof, Hash, SignedTreeHead};

use super::session::Session;
use crate::html::esc;
use crate::respond::Answer;
use crate::{Asked, Inner, WebError};

/// Leaves read at most to make a proof.
const MAX_LEAVES: u64 = 2_000_000;

/// Recomputes the consistency proof printed in `#proof` (RFC 9162 §2.1.4.2)
/// and writes the outcome into `#browser-check`.
pub const CHECK_SCRIPT: &str = r#"(async()=>{const o=document.getElementById('browser-check');const p=document.getElementById('proof');if(!o||!p)return;
const hx=s=>new Uint8Array(s.match(/../g).map(b=>parseInt(b,16)));const eq=(a,b)=>a.length===b.length&&a.every((v,i)=>v===b[i]);
const node=async(l,r)=>{const m=new Uint8Array(65);m[0]=1;m.set(l,1);m.set(r,33);return new Uint8Array(await crypto.subtle.digest('SHA-256',m));};
let fn=Number(p.dataset.oldSize),sn=Number(p.dataset.newSize);const r1=hx(p.dataset.oldRoot),r2=hx(p.dataset.newRoot);
let path=(p.dataset.path||'').split(' ').filter(x=>x).map(hx);let ok;
if(fn===sn){ok=path.length===0&&eq(r1,r2);}else if(fn===0||fn>sn){ok=false;}else{
if((fn&(fn-1))===0)path.unshift(r1);fn-=1;sn-=1;while(fn&1){fn=Math.floor(fn/2);sn=Math.floor(sn/2);}
let fr=path[0],sr=path[0];ok=path.length>0;for(const c of path.slice(1)){if(sn===0){ok=false;break;}
if((fn&1)||fn===sn){fr=await node(c,fr);sr=await node(c,sr);if(!(fn&1)){while(!(fn&1)&&fn!==0){fn=Math.floor(fn/2);sn=Math.floor(sn/2);}}}
else{sr=await node(sr,c);}fn=Math.floor(fn/2);sn=Math.floor(sn/2);}
ok=ok&&sn===0&&eq(fr,r1)&&eq(sr,r2);}
o.textContent=ok?'consistent (checked in this browser)':'NOT consistent (checked in this browser)';o.className=ok?'ok':'bad';})();"#;

/// When `path` was last written and, for a CRL, its nextUpdate (unix seconds).
pub fn file_freshness(path: &Path, is_crl: bool) -> Option<(i64, Option<i64>)> {
    let meta = std::fs::metadata(path).ok()?;
    let written = meta
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs() as i64;
    let next = is_crl
        .then(|| std::fs::read(path).ok())
        .flatten()
        .and_then(|der| {
            let (_, crl) = x509_parser::parse_x509_crl(&der).ok()?;
            crl.next_update().map(|t| t.timestamp())
        });
    Some((written, next))
}

fn hex(h: &Hash) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

/// One head's row: size, root, time, signature check.
fn head_row(label: &str, h: &SignedTreeHead, key: Option<&[u8]>) -> String {
    let signature = match key.map(|k| h.verify(k)) {
        Some(Ok(())) => "<span class=\"ok\">valid</span>".to_owned(),
        Some(Err(e)) => format!(
            "<span class=\"bad\">INVALID: {}</span>",
            esc(&e.to_string())
        ),
        None => "not checked (no audit key)".to_owned(),
    };
    format!(
        "<tr><th>{}</th><td>{}</td><td class=\"mono\">{}</td><td>{}</td><td>{signature}</td></tr>",
        esc(label),
        h.head.size,
        hex(&h.head.root),
        esc(&crate::i18n::iso(
            i64::try_from(h.head.timestamp_ms / 1000).unwrap_or(0)
        ))
    )
}

impl Inner {
    /// The two newest tree heads and the proof between them.
    pub(crate) fn audit_page(&self, asked: &Asked, session: &Session) -> Result<Answer, WebError> {
        let heads: Vec<SignedTreeHead> = self
            .storage
            .latest_tree_heads(2)?
            .iter()
            .filter_map(|b| SignedTreeHead::from_bytes(b).ok())
            .collect();
        let key = self.audit_key.as_deref();
        let mut body = String::new();
        let Some(newest) = heads.first() else {
            body.push_str("<p>No signed tree head yet.</p>");
            return Ok(self.console_html(asked, session, "Audit log", &body, None));
        };
        body.push_str("<table id=\"heads\"><tr><th></th><th>size</th><th>root (SHA-256)</th><th>signed at</th><th>signature</th></tr>");
        body.push_str(&head_row("newest", newest, key));
        let Some(previous) = heads.get(1) else {
            body.push_str("</table><p>Only one tree head so far: nothing to check it against.</p>");
            return Ok(self.console_html(asked, session, "Audit log", &body, None));
        };
        body.push_str(&head_row("previous", previous, key));
        body.push_str("</table>");
        let (old, new) = (previous.head.size, newest.head.size);
        if new > MAX_LEAVES {
            let _ = write!(
                body,
                "<p>The log has {new} entries; the console checks logs of up to {MAX_LEAVES}. Use `trustca audit verify`.</p>"
            );
            return Ok(self.console_html(asked, session, "Audit log", &body, None));
        }
        let mut leaves: Vec<Hash> = Vec::with_capacity(usize::try_from(new).unwrap_or(0));
        while (leaves.len() as u64) < new {
            let chunk = self.storage.audit_entries(leaves.len() as u64, 5_000)?;
            if chunk.is_empty() {
                break;
            }
            leaves.extend(chunk.iter().map(|e| e.leaf_hash));
        }
        leaves.truncate(usize::try_from(new).unwrap_or(0));
        let proof = ConsistencyProof::generate(&leaves, old, new);
        let (verdict, path) = match proof {
            Ok(p) => {
                let v = match p.verify(&previous.head.root, &newest.head.root) {
                    Ok(()) => "<span class=\"ok\" id=\"server-check\">consistent (checked by the server)</span>".to_owned(),
                    Err(e) => format!("<span class=\"bad\" id=\"server-check\">NOT consistent: {}</span>", esc(&e.to_string())),
                };
                (v, p.path.iter().map(hex).collect::<Vec<_>>().join(" "))
            }
            Err(e) => (
                format!(
                    "<span class=\"bad\" id=\"server-check\">no proof: {}</span>",
                    esc(&e.to_string())
                ),
                String::new(),
            ),
        };
        let _ = write!(
            body,
            "<h2>Consistency {old} → {new}</h2><p>{verdict}</p><p><span id=\"browser-check\">checking in this browser…</span></p>\
<p>Proof (RFC 9162):</p><p id=\"proof\" class=\"mono\" data-old-size=\"{old}\" data-new-size=\"{new}\" data-old-root=\"{}\" data-new-root=\"{}\" data-path=\"{}\">{}</p>",
            hex(&previous.head.root),
            hex(&newest.head.root),
            esc(&path),
            esc(&path)
        );
        Ok(self.console_html(asked, session, "Audit log", &body, Some(CHECK_SCRIPT)))
    }
}
