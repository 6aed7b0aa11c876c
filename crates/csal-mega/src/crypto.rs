//! MEGA's client-side cryptography, written from MEGA's public security
//! white paper and SDK documentation:
//! - file data: AES-128-CTR, counter block = 8-byte nonce || 64-bit
//!   big-endian block index;
//! - integrity: per chunk a CBC-MAC (IV = nonce || nonce) over the chunk's
//!   16-byte blocks (last one zero-padded); chunk MACs folded by CBC-MAC
//!   (zero IV) into the file MAC; meta-MAC = (m0^m1, m2^m3) of its 32-bit
//!   words; chunks are 128 KiB, 256 KiB, ... 1 MiB, then 1 MiB each;
//! - node key of a file (32 bytes): (key ^ (nonce||meta-MAC)) || nonce ||
//!   meta-MAC, stored AES-ECB-encrypted with the master key;
//! - attributes: "MEGA" + JSON, zero-padded to 16 bytes, AES-CBC with the
//!   node's AES key and a zero IV, base64url without padding;
//! - RSA sessions (accounts with a key pair): `privk` is the private key
//!   AES-ECB-encrypted with the master key, four MPIs p, q, d, u (each a
//!   2-byte big-endian bit count then the big-endian bytes; u = p^-1 mod q)
//!   followed by fewer than 16 padding bytes; `csid` is one MPI, the RSA
//!   ciphertext of the session id padded to len(p)+len(q)-2 bytes; the
//!   session id is the first 43 bytes of the decrypted, left-zero-padded
//!   big-endian number (MEGA SDK `AsymmCipher::decrypt`, `SIDLEN` = 43).

use aes::Aes128;
use aes::cipher::{BlockCipherDecrypt, BlockCipherEncrypt, KeyInit, KeyIvInit, StreamCipher};
use base64::Engine;
use num_bigint::BigUint;

pub(crate) type Key = [u8; 16];

pub(crate) fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

pub(crate) fn unb64(s: &str) -> Option<Vec<u8>> {
    let s = s.trim().trim_end_matches('=').replace('+', "-").replace('/', "_");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s.as_bytes()).ok()
}

pub(crate) fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).expect("OS random source");
    b
}

fn cipher(key: &Key) -> Aes128 {
    Aes128::new(&(*key).into())
}

pub(crate) fn ecb_encrypt(key: &Key, data: &mut [u8]) {
    let c = cipher(key);
    for block in data.chunks_exact_mut(16) {
        let mut b: [u8; 16] = block.try_into().expect("16");
        let mut arr = b.into();
        c.encrypt_block(&mut arr);
        b = arr.into();
        block.copy_from_slice(&b);
    }
}

pub(crate) fn ecb_decrypt(key: &Key, data: &mut [u8]) {
    let c = cipher(key);
    for block in data.chunks_exact_mut(16) {
        let b: [u8; 16] = block.try_into().expect("16");
        let mut arr = b.into();
        c.decrypt_block(&mut arr);
        let out: [u8; 16] = arr.into();
        block.copy_from_slice(&out);
    }
}

fn encrypt_one(c: &Aes128, block: &mut [u8; 16]) {
    let mut arr = (*block).into();
    c.encrypt_block(&mut arr);
    *block = arr.into();
}

/// Encrypt node attributes (`{"n": name}`) with the node's AES key.
pub(crate) fn encrypt_attr(key: &Key, attrs: &serde_json::Value) -> String {
    let mut data = format!("MEGA{attrs}").into_bytes();
    data.resize(data.len().div_ceil(16) * 16, 0);
    let c = cipher(key);
    let mut prev = [0u8; 16];
    for block in data.chunks_exact_mut(16) {
        let mut b = [0u8; 16];
        for i in 0..16 {
            b[i] = block[i] ^ prev[i];
        }
        encrypt_one(&c, &mut b);
        block.copy_from_slice(&b);
        prev = b;
    }
    b64(&data)
}

/// Decrypt node attributes; `None` if they do not decrypt to `MEGA{...}`.
pub(crate) fn decrypt_attr(key: &Key, attr_b64: &str) -> Option<serde_json::Value> {
    let mut data = unb64(attr_b64)?;
    if data.is_empty() || data.len() % 16 != 0 {
        return None;
    }
    let c = cipher(key);
    let mut prev = [0u8; 16];
    for block in data.chunks_exact_mut(16) {
        let ct: [u8; 16] = block.try_into().ok()?;
        let mut arr = ct.into();
        c.decrypt_block(&mut arr);
        let pt: [u8; 16] = arr.into();
        for i in 0..16 {
            block[i] = pt[i] ^ prev[i];
        }
        prev = ct;
    }
    let text = data.strip_prefix(b"MEGA")?;
    let end = text.iter().position(|b| *b == 0).unwrap_or(text.len());
    serde_json::from_slice(&text[..end]).ok()
}

/// Size of MEGA chunk number `index` (128 KiB steps up to 1 MiB).
pub(crate) fn chunk_size(index: u64) -> u64 {
    (128 * 1024 * (index + 1)).min(1024 * 1024)
}

/// AES-128-CTR positioned at byte `offset` of the file.
pub(crate) fn ctr_at(key: &Key, nonce: &[u8; 8], offset: u64) -> ctr::Ctr128BE<Aes128> {
    let mut iv = [0u8; 16];
    iv[..8].copy_from_slice(nonce);
    iv[8..].copy_from_slice(&(offset / 16).to_be_bytes());
    let mut c = ctr::Ctr128BE::<Aes128>::new(&(*key).into(), &iv.into());
    let skip = (offset % 16) as usize;
    if skip > 0 {
        let mut junk = [0u8; 16];
        c.apply_keystream(&mut junk[..skip]);
    }
    c
}

/// Running chunk MACs / file MAC over the plaintext, fed in any pieces.
pub(crate) struct MacState {
    cipher: Aes128,
    nonce: [u8; 8],
    chunk_mac: [u8; 16],
    file_mac: [u8; 16],
    block: [u8; 16],
    block_len: usize,
    pos: u64,
    chunk_start: u64,
    chunk_end: u64,
    chunk_index: u64,
}

impl MacState {
    pub fn new(key: &Key, nonce: &[u8; 8]) -> Self {
        let mut iv = [0u8; 16];
        iv[..8].copy_from_slice(nonce);
        iv[8..].copy_from_slice(nonce);
        MacState {
            cipher: cipher(key),
            nonce: *nonce,
            chunk_mac: iv,
            file_mac: [0u8; 16],
            block: [0u8; 16],
            block_len: 0,
            pos: 0,
            chunk_start: 0,
            chunk_end: chunk_size(0),
            chunk_index: 0,
        }
    }

    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let room = (16 - self.block_len).min((self.chunk_end - self.pos) as usize).min(data.len());
            self.block[self.block_len..self.block_len + room].copy_from_slice(&data[..room]);
            self.block_len += room;
            self.pos += room as u64;
            data = &data[room..];
            if self.block_len == 16 {
                self.absorb_block();
            }
            if self.pos == self.chunk_end {
                self.finish_chunk();
            }
        }
    }

    fn absorb_block(&mut self) {
        for i in self.block_len..16 {
            self.block[i] = 0;
        }
        for i in 0..16 {
            self.chunk_mac[i] ^= self.block[i];
        }
        encrypt_one(&self.cipher, &mut self.chunk_mac);
        self.block_len = 0;
    }

    fn finish_chunk(&mut self) {
        if self.block_len > 0 {
            self.absorb_block();
        }
        for i in 0..16 {
            self.file_mac[i] ^= self.chunk_mac[i];
        }
        encrypt_one(&self.cipher, &mut self.file_mac);
        self.chunk_index += 1;
        self.chunk_start = self.pos;
        self.chunk_end = self.pos + chunk_size(self.chunk_index);
        self.chunk_mac[..8].copy_from_slice(&self.nonce);
        self.chunk_mac[8..].copy_from_slice(&self.nonce);
    }

    /// Bytes fed so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// The meta-MAC (8 bytes) of everything fed so far.
    pub fn finish(mut self) -> [u8; 8] {
        if self.pos > self.chunk_start {
            self.finish_chunk();
        }
        let m = self.file_mac;
        let mut out = [0u8; 8];
        for i in 0..4 {
            out[i] = m[i] ^ m[4 + i];
            out[4 + i] = m[8 + i] ^ m[12 + i];
        }
        out
    }
}

/// The 32-byte node key of a file.
pub(crate) fn pack_file_key(key: &Key, nonce: &[u8; 8], meta_mac: &[u8; 8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for i in 0..8 {
        out[i] = key[i] ^ nonce[i];
        out[8 + i] = key[8 + i] ^ meta_mac[i];
    }
    out[16..24].copy_from_slice(nonce);
    out[24..32].copy_from_slice(meta_mac);
    out
}

/// (AES key, nonce, meta-MAC) of a 32-byte file node key.
pub(crate) fn unpack_file_key(k: &[u8; 32]) -> (Key, [u8; 8], [u8; 8]) {
    let mut key = [0u8; 16];
    for i in 0..16 {
        key[i] = k[i] ^ k[16 + i];
    }
    let nonce: [u8; 8] = k[16..24].try_into().expect("8");
    let mac: [u8; 8] = k[24..32].try_into().expect("8");
    (key, nonce, mac)
}

/// v2 login: PBKDF2-HMAC-SHA512(password, salt, 100000) -> 32 bytes; the
/// first 16 bytes are the password key, the last 16 the user hash (`uh`).
pub(crate) fn derive_v2(password: &[u8], salt: &[u8]) -> (Key, String) {
    let out = pbkdf2::pbkdf2_hmac_array::<sha2_11::Sha512, 32>(password, salt, 100_000);
    let key: Key = out[..16].try_into().expect("16");
    (key, b64(&out[16..]))
}

/// Length of a MEGA session id in bytes (`MegaClient::SIDLEN`).
pub(crate) const SID_LEN: usize = 43;

/// An account's RSA private key as MEGA stores it (CRT form).
pub(crate) struct RsaKey {
    p: BigUint,
    q: BigUint,
    d: BigUint,
    u: BigUint,
}

/// One MPI: 2-byte big-endian bit count, then ceil(bits/8) bytes.
fn read_mpi(data: &[u8]) -> Option<(BigUint, &[u8])> {
    let (head, rest) = data.split_first_chunk::<2>()?;
    let len = usize::from(u16::from_be_bytes(*head)).div_ceil(8);
    if rest.len() < len {
        return None;
    }
    let (bytes, rest) = rest.split_at(len);
    Some((BigUint::from_bytes_be(bytes), rest))
}

fn byte_len(x: &BigUint) -> usize {
    usize::try_from(x.bits().div_ceil(8)).unwrap_or(usize::MAX)
}

/// Parse a decrypted `privk`. `None` unless it is four MPIs (plus < 16
/// padding bytes) forming a consistent CRT key: p, q > 1, d > 0 and
/// u * p = 1 (mod q). A privk decrypted with the wrong key, or damaged,
/// fails here instead of yielding a garbage session id.
pub(crate) fn parse_privk(data: &[u8]) -> Option<RsaKey> {
    let (p, rest) = read_mpi(data)?;
    let (q, rest) = read_mpi(rest)?;
    let (d, rest) = read_mpi(rest)?;
    let (u, rest) = read_mpi(rest)?;
    let one = BigUint::from(1u32);
    if rest.len() >= 16 || p <= one || q <= one || d == BigUint::ZERO || u == BigUint::ZERO || u >= q {
        return None;
    }
    if (&u * &p) % &q != one {
        return None;
    }
    Some(RsaKey { p, q, d, u })
}

/// Decrypt `csid` (one MPI) with the account's private key and return the
/// session id. `None` if the ciphertext is malformed or not below n.
pub(crate) fn decrypt_csid(key: &RsaKey, csid: &[u8]) -> Option<[u8; SID_LEN]> {
    let (c, rest) = read_mpi(csid)?;
    if rest.len() >= 16 || c >= &key.p * &key.q {
        return None;
    }
    let one = BigUint::from(1u32);
    // CRT (Garner): m = xp + p * ((xq - xp) * u mod q), u = p^-1 mod q.
    let xp = (&c % &key.p).modpow(&(&key.d % (&key.p - &one)), &key.p);
    let xq = (&c % &key.q).modpow(&(&key.d % (&key.q - &one)), &key.q);
    let xp_q = &xp % &key.q;
    let diff = if xq >= xp_q { xq - xp_q } else { xq + &key.q - xp_q };
    let m = (diff * &key.u) % &key.q * &key.p + xp;
    let bytes = m.to_bytes_be();
    let bytes: &[u8] = if m == BigUint::ZERO { &[] } else { &bytes };
    let width = (byte_len(&key.p) + byte_len(&key.q)).saturating_sub(2).max(bytes.len());
    if width < SID_LEN {
        return None;
    }
    let mut padded = vec![0u8; width - bytes.len()];
    padded.extend_from_slice(bytes);
    padded[..SID_LEN].try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mpi(x: &BigUint) -> Vec<u8> {
        let bits = u16::try_from(x.bits()).unwrap();
        let mut out = bits.to_be_bytes().to_vec();
        if bits > 0 {
            out.extend_from_slice(&x.to_bytes_be());
        }
        out
    }

    /// Two known primes (2^255 - 19, 2^256 - 189) for a small but real key.
    fn test_key() -> (BigUint, BigUint) {
        let p = (BigUint::from(1u32) << 255u32) - BigUint::from(19u32);
        let q = (BigUint::from(1u32) << 256u32) - BigUint::from(189u32);
        (p, q)
    }

    fn privk_bytes(p: &BigUint, q: &BigUint, e: &BigUint) -> Vec<u8> {
        let one = BigUint::from(1u32);
        let phi = (p - &one) * (q - &one);
        let d = e.modinv(&phi).expect("e invertible");
        let u = p.modinv(q).expect("p invertible mod q");
        let mut out = Vec::new();
        for x in [p, q, &d, &u] {
            out.extend(mpi(x));
        }
        out
    }

    #[test]
    fn csid_decrypts_to_the_padded_session_id() {
        let (p, q) = test_key();
        let e = BigUint::from(65537u32);
        let key = parse_privk(&privk_bytes(&p, &q, &e)).expect("valid key");
        let n = &p * &q;
        // Plaintext = sid || random padding, len(n) - 2 bytes; a leading zero
        // byte in the sid must survive (the padding width restores it).
        let width = n.to_bytes_be().len() - 2;
        let mut plain: Vec<u8> = (0..width).map(|i| (i * 37 % 251) as u8).collect();
        plain[0] = 0;
        let c = BigUint::from_bytes_be(&plain).modpow(&e, &n);
        let sid = decrypt_csid(&key, &mpi(&c)).expect("decrypts");
        assert_eq!(&sid[..], &plain[..SID_LEN]);
    }

    #[test]
    fn damaged_private_keys_are_rejected() {
        let (p, q) = test_key();
        let good = privk_bytes(&p, &q, &BigUint::from(65537u32));
        assert!(parse_privk(&good).is_some());
        assert!(parse_privk(&good[..good.len() - 3]).is_none(), "truncated");
        assert!(parse_privk(&[]).is_none());
        assert!(parse_privk(&[0xff; 300]).is_none(), "length past the end");
        let mut flipped = good.clone();
        flipped[10] ^= 0x40; // inside p
        assert!(parse_privk(&flipped).is_none(), "p no longer matches u");
        let mut long = good;
        long.extend_from_slice(&[0u8; 16]);
        assert!(parse_privk(&long).is_none(), "16+ trailing bytes");
    }

    #[test]
    fn garbage_keys_and_session_ids_never_panic() {
        let (p, q) = test_key();
        let good = privk_bytes(&p, &q, &BigUint::from(65537u32));
        let key = parse_privk(&good).unwrap();
        for round in 0..2000usize {
            let noise: [u8; 96] = random();
            let len = round % 97;
            let mut data = noise[..len].to_vec();
            // Plausible MPI headers too, not only random lengths.
            if round % 2 == 0 && len >= 2 {
                data[0] = 0;
                data[1] = (round % 200) as u8;
            }
            let _ = parse_privk(&data);
            let _ = decrypt_csid(&key, &data);
            let mut damaged = good.clone();
            damaged[round % good.len()] ^= noise[0] | 1;
            // Damage inside d passes the key checks; decryption still must not panic.
            let _ = parse_privk(&damaged).map(|k| decrypt_csid(&k, &data));
        }
    }

    #[test]
    fn csid_at_or_above_the_modulus_is_rejected() {
        let (p, q) = test_key();
        let key = parse_privk(&privk_bytes(&p, &q, &BigUint::from(65537u32))).unwrap();
        assert!(decrypt_csid(&key, &mpi(&(&p * &q))).is_none());
        assert!(decrypt_csid(&key, &[0x01]).is_none());
    }

    #[test]
    fn attributes_round_trip() {
        let key = [7u8; 16];
        let enc = encrypt_attr(&key, &serde_json::json!({"n": "seg-01.mp4"}));
        assert_eq!(decrypt_attr(&key, &enc).unwrap()["n"], "seg-01.mp4");
        assert!(decrypt_attr(&[8u8; 16], &enc).is_none());
    }

    #[test]
    fn mac_does_not_depend_on_how_data_is_split() {
        let key = [3u8; 16];
        let nonce = [9u8; 8];
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut a = MacState::new(&key, &nonce);
        a.update(&data);
        let mut b = MacState::new(&key, &nonce);
        for piece in data.chunks(777) {
            b.update(piece);
        }
        assert_eq!(a.finish(), b.finish());
    }

    #[test]
    fn file_key_packs_and_unpacks() {
        let (k, n, m) = ([1u8; 16], [2u8; 8], [3u8; 8]);
        assert_eq!(unpack_file_key(&pack_file_key(&k, &n, &m)), (k, n, m));
    }
}
