//! QR codes for product labels: the URL of a label page as SVG (for print
//! layouts) and PNG (for everything else), with the quiet zone the
//! standard asks for and error correction level M (15 % of the code may be
//! damaged or covered).

use std::io::Cursor;

use qrcode::{EcLevel, QrCode};

use crate::WebError;

/// Longest URL put into a code (a label id URL is ~150 characters).
pub const MAX_URL_BYTES: usize = 1024;

fn code(url: &str) -> Result<QrCode, WebError> {
    if url.len() > MAX_URL_BYTES {
        return Err(WebError::Qr(format!(
            "a URL of {} bytes is over the {MAX_URL_BYTES}-byte limit",
            url.len()
        )));
    }
    QrCode::with_error_correction_level(url.as_bytes(), EcLevel::M)
        .map_err(|e| WebError::Qr(e.to_string()))
}

/// The code for `url` as an SVG document.
pub fn svg(url: &str) -> Result<String, WebError> {
    Ok(code(url)?
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(240, 240)
        .quiet_zone(true)
        .build())
}

/// The code for `url` as a greyscale PNG, 8 pixels a module.
pub fn png(url: &str) -> Result<Vec<u8>, WebError> {
    let image = code(url)?
        .render::<image::Luma<u8>>()
        .module_dimensions(8, 8)
        .quiet_zone(true)
        .build();
    let mut out = Cursor::new(Vec::new());
    image
        .write_to(&mut out, image::ImageFormat::Png)
        .map_err(|e| WebError::Qr(format!("PNG encoding: {e}")))?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn codes_are_png_and_svg_and_refuse_oversize_urls() {
        let image = png("https://labels.example/device/abc").unwrap();
        assert_eq!(&image[..8], b"\x89PNG\r\n\x1a\n");
        let svg = svg("https://labels.example/device/abc").unwrap();
        assert!(svg.contains("<svg") && svg.contains("</svg>"));
        assert!(png(&"a".repeat(MAX_URL_BYTES + 1)).is_err());
    }
}
