//! Property tests: whatever bytes or commands arrive, nothing panics; every command and
//! reply survives encoding and decoding.

use dmarc_milter::codec::{
    Actions, Command, ConnectAddress, FrameDecoder, MacroStage, Protocol, Reply, SmtpReply,
};
use dmarc_milter::session::{Session, SessionLimits};
use proptest::prelude::*;

use crate::support::filter;

fn text() -> impl Strategy<Value = String> {
    "[ -~]{0,40}"
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..200)
}

fn nonul() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(1u8..=255, 1..60)
}

fn command() -> impl Strategy<Value = Command> {
    let addr = prop_oneof![
        Just(ConnectAddress::Unknown),
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, port)| ConnectAddress::Inet(
            (std::net::Ipv4Addr::from(ip), port).into()
        )),
        (any::<[u8; 16]>(), any::<u16>()).prop_map(|(ip, port)| ConnectAddress::Inet(
            (std::net::Ipv6Addr::from(ip), port).into()
        )),
        "/[a-z/]{1,20}".prop_map(ConnectAddress::Unix),
    ];
    let args = || proptest::collection::vec(text(), 1..4);
    prop_oneof![
        (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(v, a, p)| Command::OptNeg {
            version: v,
            actions: Actions(a),
            protocol: Protocol(p)
        }),
        (
            any::<u8>(),
            proptest::collection::vec((text(), text()), 0..4)
        )
            .prop_map(|(c, m)| Command::Macro {
                for_command: c,
                macros: m
            }),
        (text(), addr).prop_map(|(h, a)| Command::Connect {
            hostname: h,
            address: a
        }),
        text().prop_map(|name| Command::Helo { name }),
        args().prop_map(|args| Command::Mail { args }),
        args().prop_map(|args| Command::Rcpt { args }),
        Just(Command::Data),
        (nonul(), proptest::collection::vec(1u8..=255, 0..60))
            .prop_map(|(name, value)| Command::Header { name, value }),
        Just(Command::EndOfHeaders),
        bytes().prop_map(|chunk| Command::Body { chunk }),
        bytes().prop_map(|chunk| Command::EndOfMessage { chunk }),
        Just(Command::Abort),
        Just(Command::Quit),
        Just(Command::QuitNewConnection),
        text().prop_map(|command| Command::Unknown { command }),
    ]
}

fn reply() -> impl Strategy<Value = Reply> {
    let stage = proptest::sample::select(MacroStage::ALL.to_vec());
    let smtp = (
        prop_oneof![Just(451u16), Just(550u16)],
        "[a-z %]{1,30}",
        1usize..3,
    )
        .prop_map(|(code, line, lines)| {
            let enhanced = if code >= 500 { "5.7.1" } else { "4.7.5" };
            SmtpReply::new(code, Some(enhanced), &vec![line; lines].join("\n")).unwrap()
        });
    prop_oneof![
        (
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            proptest::collection::vec((stage, text()), 0..3)
        )
            .prop_map(|(v, a, p, macros)| Reply::OptNeg {
                version: v,
                actions: Actions(a),
                protocol: Protocol(p),
                macros
            }),
        Just(Reply::Continue),
        Just(Reply::Accept),
        Just(Reply::Reject),
        Just(Reply::TempFail),
        Just(Reply::Discard),
        smtp.prop_map(Reply::ReplyCode),
        text().prop_map(|reason| Reply::Quarantine { reason }),
        (any::<u32>(), text(), text()).prop_map(|(index, name, value)| Reply::InsertHeader {
            index,
            name,
            value
        }),
        (any::<u32>(), text(), text()).prop_map(|(index, name, value)| Reply::ChangeHeader {
            index,
            name,
            value
        }),
        (text(), text()).prop_map(|(name, value)| Reply::AddHeader { name, value }),
        Just(Reply::Progress),
        Just(Reply::Skip),
    ]
}

fn frames_of(bytes: &[u8]) -> Vec<dmarc_milter::codec::Frame> {
    let mut d = FrameDecoder::new(1 << 16);
    d.push(bytes);
    let mut out = Vec::new();
    while let Ok(Some(f)) = d.next_frame() {
        out.push(f);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn commands_round_trip(cmd in command()) {
        let mut out = Vec::new();
        cmd.encode(&mut out).unwrap();
        let f = frames_of(&out);
        prop_assert_eq!(f.len(), 1);
        prop_assert_eq!(Command::parse(f[0].clone()).unwrap(), cmd);
    }

    #[test]
    fn replies_round_trip(r in reply()) {
        let mut out = Vec::new();
        r.encode(&mut out).unwrap();
        let f = frames_of(&out);
        prop_assert_eq!(f.len(), 1);
        prop_assert_eq!(Reply::parse(&f[0]).unwrap(), r);
    }

    /// Random bytes, fed in random pieces: the decoder and the parsers never panic, and
    /// a frame error is an error, not a hang.
    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600), cut in 0usize..600) {
        let mut d = FrameDecoder::new(256);
        let cut = cut.min(data.len());
        for piece in [&data[..cut], &data[cut..]] {
            d.push(piece);
            while let Ok(Some(f)) = d.next_frame() {
                let _ = Command::parse(f.clone());
                let _ = Reply::parse(&f);
            }
        }
    }

    /// Frames that are well formed but of random kinds: the frame's data randomised after
    /// a valid command byte.
    #[test]
    fn random_data_after_each_command_byte(code in proptest::sample::select(b"ABCDEHLMNOQRTUKacdmprthiyqs".to_vec()), data in bytes()) {
        let f = dmarc_milter::codec::Frame { code, data, offset: 0 };
        let _ = Command::parse(f.clone());
        let _ = Reply::parse(&f);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Commands in any order through the session with the real DMARC filter: errors are
    /// fine, panics are not; after an error the session refuses everything.
    #[test]
    fn commands_in_any_order_never_panic(cmds in proptest::collection::vec(command(), 0..25)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let built = filter(&["message_timeout=1"]);
            let mut s = Session::new(built.filter.clone(), SessionLimits::default());
            let mut offer = vec![Command::OptNeg {
                version: 6,
                actions: Actions(0x1ff),
                protocol: Protocol(0x1f_ffff),
            }];
            offer.extend(cmds);
            for c in offer {
                if s.handle(c).await.is_err() {
                    break;
                }
            }
            s.finish();
        });
    }
}
