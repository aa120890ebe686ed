//! A tiny synthetic H.264 elementary stream: well-formed Baseline-profile SPS, PPS, IDR
//! pictures made of I_PCM macroblocks (a flat grey picture, no entropy coder needed) and
//! P pictures whose macroblocks are all skipped (a static scene), padded with filler-data
//! NAL units to the configured bitrate.
//!
//! Every NAL unit is built as an RBSP with exp-Golomb fields and emulation prevention, so
//! a decoder accepts the stream; the vendor SDK only needs it to look like H.264 over RTP.

/// NAL unit types used here.
const NAL_SLICE: u8 = 1;
const NAL_IDR: u8 = 5;
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;
const NAL_FILLER: u8 = 12;

/// `log2_max_frame_num_minus4` = 0: `frame_num` counts modulo 16.
const MAX_FRAME_NUM: u32 = 16;

/// Bit writer for RBSPs (MSB first).
#[derive(Default)]
struct Bits {
    out: Vec<u8>,
    cur: u8,
    used: u8,
}

impl Bits {
    fn bit(&mut self, b: bool) {
        self.cur = (self.cur << 1) | u8::from(b);
        self.used += 1;
        if self.used == 8 {
            self.out.push(self.cur);
            self.cur = 0;
            self.used = 0;
        }
    }

    fn u(&mut self, n: u32, v: u32) {
        for i in (0..n).rev() {
            self.bit((v >> i) & 1 == 1);
        }
    }

    /// Unsigned exp-Golomb.
    fn ue(&mut self, v: u32) {
        let x = u64::from(v) + 1;
        let len = 64 - x.leading_zeros(); // bits of x
        for _ in 0..len - 1 {
            self.bit(false);
        }
        for i in (0..len).rev() {
            self.bit((x >> i) & 1 == 1);
        }
    }

    /// Signed exp-Golomb.
    fn se(&mut self, v: i32) {
        let k = if v > 0 {
            (v as u32) * 2 - 1
        } else {
            v.unsigned_abs() * 2
        };
        self.ue(k);
    }

    fn aligned(&self) -> bool {
        self.used == 0
    }

    fn align_zero(&mut self) {
        while !self.aligned() {
            self.bit(false);
        }
    }

    /// `rbsp_trailing_bits`: a one, then zeros to the byte boundary.
    fn trailing(mut self) -> Vec<u8> {
        self.bit(true);
        self.align_zero();
        self.out
    }
}

/// NAL header byte + emulation-prevented RBSP.
fn nal(ref_idc: u8, kind: u8, rbsp: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rbsp.len() + rbsp.len() / 64 + 1);
    out.push((ref_idc << 5) | kind);
    let mut zeros = 0;
    for &b in rbsp {
        if zeros >= 2 && b <= 3 {
            out.push(3);
            zeros = 0;
        }
        out.push(b);
        zeros = if b == 0 { zeros + 1 } else { 0 };
    }
    out
}

/// Encoder state of one stream.
#[derive(Debug, Clone)]
pub(crate) struct H264Gen {
    width_mbs: u32,
    height_mbs: u32,
    /// Pictures per GOP (an IDR starts each).
    gop: u32,
    /// Pictures made so far.
    count: u64,
    idr_id: u32,
    /// Bytes owed to (positive) or ahead of (negative) the bitrate.
    credit: i64,
}

impl H264Gen {
    pub(crate) fn new(width_mbs: u32, height_mbs: u32, gop: u32) -> H264Gen {
        H264Gen {
            width_mbs: width_mbs.max(1),
            height_mbs: height_mbs.max(1),
            gop: gop.max(1),
            count: 0,
            idr_id: 0,
            credit: 0,
        }
    }

    /// Width and height in pixels.
    pub(crate) fn dimensions(&self) -> (u32, u32) {
        (self.width_mbs * 16, self.height_mbs * 16)
    }

    /// Sequence parameter set (Baseline, level 3.0, `pic_order_cnt_type` 2).
    pub(crate) fn sps(&self) -> Vec<u8> {
        let mut b = Bits::default();
        b.u(8, 66); // profile_idc: Baseline
        b.u(8, 0xC0); // constraint_set0/1 flags, reserved zeros
        b.u(8, 30); // level_idc 3.0
        b.ue(0); // seq_parameter_set_id
        b.ue(0); // log2_max_frame_num_minus4
        b.ue(2); // pic_order_cnt_type
        b.ue(1); // max_num_ref_frames
        b.bit(false); // gaps_in_frame_num_value_allowed_flag
        b.ue(self.width_mbs - 1);
        b.ue(self.height_mbs - 1);
        b.bit(true); // frame_mbs_only_flag
        b.bit(true); // direct_8x8_inference_flag
        b.bit(false); // frame_cropping_flag
        b.bit(false); // vui_parameters_present_flag
        nal(3, NAL_SPS, &b.trailing())
    }

    /// Picture parameter set (CAVLC, one slice group).
    pub(crate) fn pps(&self) -> Vec<u8> {
        let mut b = Bits::default();
        b.ue(0); // pic_parameter_set_id
        b.ue(0); // seq_parameter_set_id
        b.bit(false); // entropy_coding_mode_flag: CAVLC
        b.bit(false); // bottom_field_pic_order_in_frame_present_flag
        b.ue(0); // num_slice_groups_minus1
        b.ue(0); // num_ref_idx_l0_default_active_minus1
        b.ue(0); // num_ref_idx_l1_default_active_minus1
        b.bit(false); // weighted_pred_flag
        b.u(2, 0); // weighted_bipred_idc
        b.se(0); // pic_init_qp_minus26
        b.se(0); // pic_init_qs_minus26
        b.se(0); // chroma_qp_index_offset
        b.bit(true); // deblocking_filter_control_present_flag
        b.bit(false); // constrained_intra_pred_flag
        b.bit(false); // redundant_pic_cnt_present_flag
        nal(3, NAL_PPS, &b.trailing())
    }

    fn idr(&self) -> Vec<u8> {
        let mut b = Bits::default();
        b.ue(0); // first_mb_in_slice
        b.ue(7); // slice_type: I (all slices)
        b.ue(0); // pic_parameter_set_id
        b.u(4, 0); // frame_num
        b.ue(self.idr_id); // idr_pic_id
        b.bit(false); // no_output_of_prior_pics_flag
        b.bit(false); // long_term_reference_flag
        b.se(0); // slice_qp_delta
        b.ue(1); // disable_deblocking_filter_idc: off
        for _ in 0..self.width_mbs * self.height_mbs {
            b.ue(25); // mb_type I_PCM
            b.align_zero(); // pcm_alignment_zero_bit
            for _ in 0..(256 + 128) {
                b.u(8, 0x80); // mid-grey luma and chroma samples
            }
        }
        nal(3, NAL_IDR, &b.trailing())
    }

    fn p(&self, frame_num: u32) -> Vec<u8> {
        let mut b = Bits::default();
        b.ue(0); // first_mb_in_slice
        b.ue(5); // slice_type: P (all slices)
        b.ue(0); // pic_parameter_set_id
        b.u(4, frame_num % MAX_FRAME_NUM);
        b.bit(false); // num_ref_idx_active_override_flag
        b.bit(false); // ref_pic_list_modification_flag_l0
        b.bit(false); // adaptive_ref_pic_marking_mode_flag
        b.se(0); // slice_qp_delta
        b.ue(1); // disable_deblocking_filter_idc
        b.ue(self.width_mbs * self.height_mbs); // mb_skip_run: every macroblock
        nal(2, NAL_SLICE, &b.trailing())
    }

    /// The NAL units of the next picture (SPS and PPS before every IDR), plus filler so
    /// that on average each picture is `budget` bytes.
    pub(crate) fn next_picture(&mut self, budget: usize) -> Vec<Vec<u8>> {
        let pos = (self.count % u64::from(self.gop)) as u32;
        let mut nals = Vec::with_capacity(4);
        if pos == 0 {
            nals.push(self.sps());
            nals.push(self.pps());
            nals.push(self.idr());
            self.idr_id = (self.idr_id + 1) % 65_536;
        } else {
            nals.push(self.p(pos));
        }
        self.count += 1;
        let size: usize = nals.iter().map(Vec::len).sum();
        self.credit += budget as i64 - size as i64;
        // A filler NAL costs at least 2 bytes (header and trailing bits).
        if self.credit > 2 {
            let fill = (self.credit - 2) as usize;
            let mut f = Vec::with_capacity(fill + 2);
            f.push(NAL_FILLER);
            f.resize(fill + 1, 0xFF);
            f.push(0x80);
            self.credit -= f.len() as i64;
            nals.push(f);
        }
        nals
    }
}

/// Standard base64 (for `sprop-parameter-sets`).
pub(crate) fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(c.get(1).copied().unwrap_or(0)) << 8)
            | u32::from(c.get(2).copied().unwrap_or(0));
        for i in 0..4 {
            if i <= c.len() {
                s.push(char::from(T[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                s.push('=');
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_golomb() {
        let mut b = Bits::default();
        b.ue(0); // 1
        b.ue(1); // 010
        b.ue(2); // 011
        b.se(-1); // ue(2) = 011
        assert_eq!(b.trailing(), vec![0b1010_0110, 0b1110_0000]);
    }

    #[test]
    fn known_sps_and_base64() {
        let g = H264Gen::new(4, 3, 25);
        let sps = g.sps();
        assert_eq!(&sps[..4], &[0x67, 66, 0xC0, 30]);
        assert_eq!(base64(b"Man"), "TWFu");
        assert_eq!(base64(b"Ma"), "TWE=");
        assert_eq!(base64(b"M"), "TQ==");
    }

    #[test]
    fn pictures_hit_the_budget_and_never_hold_a_start_code() {
        let mut g = H264Gen::new(4, 3, 25);
        let budget = 64_000 / 8 / 25;
        let mut total = 0;
        for i in 0..250 {
            let nals = g.next_picture(budget);
            if i % 25 == 0 {
                assert_eq!(nals[0][0] & 0x1F, NAL_SPS);
                assert_eq!(nals[2][0] & 0x1F, NAL_IDR);
            } else {
                assert_eq!(nals[0][0] & 0x1F, NAL_SLICE);
            }
            for n in &nals {
                total += n.len();
                assert!(
                    !n.windows(3).any(|w| w[0] == 0 && w[1] == 0 && w[2] <= 2),
                    "start code inside a NAL unit"
                );
            }
        }
        let expect = budget * 250;
        assert!(total.abs_diff(expect) < 5_000, "{total} vs {expect}");
    }
}
