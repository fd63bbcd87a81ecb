//! Numbers in words, shared by the page and the worker (whose messages name
//! file sizes too).

/// 1234567 -> "1.2 MB".
pub fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.2} GB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.0} kB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes() {
        assert_eq!(super::bytes(512), "512 B");
        assert_eq!(super::bytes(1536), "2 kB");
        assert_eq!(super::bytes(138 << 20), "138.0 MB");
        assert_eq!(super::bytes(3 << 30), "3.00 GB");
    }
}
