//! Little-endian field-by-field (de)serialisation of the ABI structs, in safe
//! code. x86_64 is little-endian, so these images are the structs' in-memory
//! `repr(C)` layouts.

/// Appends fields, in order, to a fixed-size byte image.
pub(crate) struct ByteWriter<'a> {
    image: &'a mut [u8],
    position: usize,
}

impl<'a> ByteWriter<'a> {
    pub(crate) fn new(image: &'a mut [u8]) -> Self {
        ByteWriter { image, position: 0 }
    }

    /// Copies `field` at the current position. The callers size their images
    /// at compile time; a field that would not fit is dropped, never a panic.
    fn put(&mut self, field: &[u8]) {
        let end = self.position.saturating_add(field.len());
        if let Some(destination) = self.image.get_mut(self.position..end) {
            destination.copy_from_slice(field);
        }
        self.position = end;
    }

    pub(crate) fn u8(&mut self, value: u8) {
        self.put(&[value]);
    }

    pub(crate) fn u16(&mut self, value: u16) {
        self.put(&value.to_le_bytes());
    }

    pub(crate) fn u32(&mut self, value: u32) {
        self.put(&value.to_le_bytes());
    }

    pub(crate) fn u64(&mut self, value: u64) {
        self.put(&value.to_le_bytes());
    }

    pub(crate) fn u128(&mut self, value: u128) {
        self.put(&value.to_le_bytes());
    }

    /// `usize` is 64 bits on x86_64, the only target of this ABI.
    pub(crate) fn usize(&mut self, value: usize) {
        self.u64(value as u64);
    }

    /// How many bytes were written (used by tests to check the image is full).
    #[cfg(test)]
    pub(crate) fn written(&self) -> usize {
        self.position
    }
}

/// Takes fields, in order, from a byte image.
pub(crate) struct ByteReader<'a> {
    rest: &'a [u8],
}

impl<'a> ByteReader<'a> {
    pub(crate) fn new(image: &'a [u8]) -> Self {
        ByteReader { rest: image }
    }

    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, tail) = self.rest.split_first_chunk::<N>()?;
        self.rest = tail;
        Some(*head)
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|[byte]| byte)
    }

    pub(crate) fn u16(&mut self) -> Option<u16> {
        self.take().map(u16::from_le_bytes)
    }

    pub(crate) fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_le_bytes)
    }

    pub(crate) fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_le_bytes)
    }

    pub(crate) fn u128(&mut self) -> Option<u128> {
        self.take().map(u128::from_le_bytes)
    }

    pub(crate) fn usize(&mut self) -> Option<usize> {
        self.u64().map(|value| value as usize)
    }

    /// Whether every byte has been consumed.
    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }
}

/// Reads a whole struct image: `None` unless `image` is exactly `size` bytes
/// and `read` consumes all of them.
pub(crate) fn read_exact<T>(
    image: &[u8],
    size: usize,
    read: impl FnOnce(&mut ByteReader<'_>) -> Option<T>,
) -> Option<T> {
    if image.len() != size {
        return None;
    }
    let mut reader = ByteReader::new(image);
    let value = read(&mut reader)?;
    reader.is_empty().then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_and_reader_round_trip_little_endian() {
        let mut image = [0u8; 1 + 2 + 4 + 8 + 16];
        let mut writer = ByteWriter::new(&mut image);
        writer.u8(0x11);
        writer.u16(0x2233);
        writer.u32(0x4455_6677);
        writer.u64(0x8899_AABB_CCDD_EEFF);
        writer.u128(1);
        assert_eq!(writer.written(), image.len());
        assert_eq!(&image[..3], &[0x11, 0x33, 0x22]);

        let mut reader = ByteReader::new(&image);
        assert_eq!(reader.u8(), Some(0x11));
        assert_eq!(reader.u16(), Some(0x2233));
        assert_eq!(reader.u32(), Some(0x4455_6677));
        assert_eq!(reader.u64(), Some(0x8899_AABB_CCDD_EEFF));
        assert_eq!(reader.u128(), Some(1));
        assert!(reader.is_empty());
        assert_eq!(reader.u8(), None);
    }

    #[test]
    fn writer_drops_what_does_not_fit() {
        let mut image = [0u8; 4];
        let mut writer = ByteWriter::new(&mut image);
        writer.u64(u64::MAX);
        assert_eq!(image, [0; 4]);
    }

    #[test]
    fn read_exact_wants_the_exact_size() {
        let image = [1u8, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(read_exact(&image, 8, |r| r.u64()), Some(1));
        assert_eq!(read_exact(&image[..7], 7, |r| r.u64()), None);
        assert_eq!(read_exact(&image, 9, |r| r.u64()), None);
        assert_eq!(read_exact(&image, 8, |r| r.u32()), None);
    }
}
