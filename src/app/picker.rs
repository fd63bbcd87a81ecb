//! The model picker's plain parts: the SmolLM2 family, and what a model
//! report says (download size, memory at the chosen precision, whether it
//! fits a tab), in words. Unit-tested natively.

use crate::engine::file_checks::WEIGHT_BUDGET_BYTES;
use crate::protocol::{ModelReport, Precision};
use crate::words::bytes;

/// One size of the family: its instruct and base checkpoints.
pub struct Sibling {
    pub label: &'static str,
    pub instruct: &'static str,
    pub foundation: &'static str,
}

/// The tutorial's last step: "swap in a larger sibling".
pub const SIBLINGS: [Sibling; 3] = [
    Sibling { label: "SmolLM2-135M", instruct: "HuggingFaceTB/SmolLM2-135M-Instruct", foundation: "HuggingFaceTB/SmolLM2-135M" },
    Sibling { label: "SmolLM2-360M", instruct: "HuggingFaceTB/SmolLM2-360M-Instruct", foundation: "HuggingFaceTB/SmolLM2-360M" },
    Sibling { label: "SmolLM2-1.7B", instruct: "HuggingFaceTB/SmolLM2-1.7B-Instruct", foundation: "HuggingFaceTB/SmolLM2-1.7B" },
];

/// Whether a model's weights fit a tab at a precision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fit {
    Fits,
    /// Not at this precision, but at that one.
    Needs(Precision),
    /// At no precision this page has.
    TooBig,
    /// Its shape is not known before the download.
    Unknown,
    /// The hub refused or does not have it.
    Refused,
}

/// Whether `report`'s model fits at `precision`, and the words that say it.
pub fn report_words(report: &Result<ModelReport, String>, precision: Precision) -> (Fit, String) {
    let r = match report {
        Ok(r) => r,
        Err(why) => return (Fit::Refused, why.clone()),
    };
    let download = match (r.cached, r.download_bytes) {
        (true, _) => "already in this browser (no download)".to_string(),
        (false, Some(b)) => format!("{} to download", bytes(b)),
        (false, None) => "download size not known (this hub lists no sizes)".to_string(),
    };
    let Some(shape) = &r.shape else {
        let why = r.shape_problem.as_deref().unwrap_or("its shape is not known");
        return (Fit::Unknown, format!("{download}; memory not known before the download: {why}."));
    };
    let budget = WEIGHT_BUDGET_BYTES as f64;
    let need = shape.memory(precision);
    let at = |p: Precision| format!("{} at precision {}", bytes(shape.memory(p) as u64), p.name());
    let (fit, verdict) = if need <= budget {
        (Fit::Fits, "fits in this tab".to_string())
    } else if let Some(p) = [Precision::Q8_0, Precision::Stored].into_iter().find(|&p| shape.memory(p) <= budget) {
        (Fit::Needs(p), format!("more than the {} a tab can hold: it needs precision {} ({})", bytes(WEIGHT_BUDGET_BYTES), p.name(), at(p)))
    } else {
        (Fit::TooBig, format!("more than the {} a tab can hold at any precision", bytes(WEIGHT_BUDGET_BYTES)))
    };
    (fit, format!("{download}; its {} weights take {}: {verdict}.", count_words(shape.weights), at(precision)))
}

/// 1_711_376_384 -> "1.71 billion"; 134_515_008 -> "135 million".
pub fn count_words(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.2} billion", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.0} million", n as f64 / 1e6),
        n => n.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ModelShape;

    fn report(weights: u64, stored: f64, cached: bool) -> Result<ModelReport, String> {
        let shape = ModelShape { weights, stored_bytes_per_weight: stored, context_length: 8192 };
        Ok(ModelReport { download_bytes: Some((weights as f64 * stored) as u64), cached, shape: Some(shape), shape_problem: None })
    }

    #[test]
    fn a_model_fits_or_names_the_precision_it_needs() {
        let small = report(134_515_008, 2.0, false);
        let (fit, words) = report_words(&small, Precision::Auto);
        assert_eq!(fit, Fit::Fits);
        assert_eq!(words, "256.6 MB to download; its 135 million weights take 256.6 MB at precision auto: fits in this tab.");
        // SmolLM2-1.7B in bf16: 3.4 GB at auto or f16, more than a tab; q8_0 fits.
        let big = report(1_711_376_384, 2.0, false);
        let (fit, words) = report_words(&big, Precision::Auto);
        assert_eq!(fit, Fit::Needs(Precision::Q8_0));
        assert!(words.starts_with("3.19 GB to download; its 1.71 billion weights take 3.19 GB at precision auto: more than the 3.00 GB a tab can hold: it needs precision q8_0 (1.79 GB at precision q8_0)"), "{words}");
        assert_eq!(report_words(&big, Precision::Q8_0).0, Fit::Fits);
        assert_eq!(report_words(&big, Precision::F32).0, Fit::Needs(Precision::Q8_0));
        assert_eq!(report_words(&report(4_000_000_000, 2.0, false), Precision::Q8_0).0, Fit::TooBig);
        assert!(report_words(&report(1000, 2.0, true), Precision::Auto).1.starts_with("already in this browser"));
    }

    #[test]
    fn an_unknown_shape_or_a_refusal_is_said() {
        let r = Ok(ModelReport { download_bytes: None, cached: false, shape: None, shape_problem: Some("the hub lists no files here".into()) });
        let (fit, words) = report_words(&r, Precision::Auto);
        assert_eq!(fit, Fit::Unknown);
        assert!(words.contains("download size not known") && words.contains("the hub lists no files here"), "{words}");
        assert_eq!(report_words(&Err("no such repo".into()), Precision::Auto), (Fit::Refused, "no such repo".into()));
    }
}
