//! Hard limits applied while unpacking and parsing untrusted input.

/// Hard limits; going over any of them is a [`crate::ReportError::Limit`] naming the field.
///
/// The defaults suit reports as large receivers send them (Google's biggest are a few MB
/// uncompressed) with a wide margin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest input accepted at all, in bytes. Default: 256 MiB.
    pub max_input_size: u64,
    /// Largest total of bytes produced by decompression for one input (all entries and
    /// nesting levels together), in bytes. Default: 512 MiB.
    pub max_decompressed_size: u64,
    /// Largest ratio of decompressed to compressed size of one gzip member or zip entry
    /// (checked once the output passes 1 MiB). Default: 200.
    pub max_compression_ratio: u64,
    /// Most entries in one zip archive, MIME parts in one message, or messages in one mbox.
    /// Default: 10 000.
    pub max_entries: usize,
    /// Deepest nesting of containers (a zip in a gzip in an email in an mbox is 4).
    /// Default: 8.
    pub max_nesting: usize,
    /// Deepest XML element nesting in an aggregate report. Default: 64.
    pub max_xml_depth: usize,
    /// Most `<record>` elements in one aggregate report. Default: 5 000 000.
    pub max_records: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_input_size: 256 << 20,
            max_decompressed_size: 512 << 20,
            max_compression_ratio: 200,
            max_entries: 10_000,
            max_nesting: 8,
            max_xml_depth: 64,
            max_records: 5_000_000,
        }
    }
}
