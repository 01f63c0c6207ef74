use super::*;

fn fast<'a, const N: usize>(json: &'a [u8], names: [&str; N]) -> Option<[Field<'a>; N]> {
    Scanner::new(json).object(names)
}

const NAMES: [&str; 3] = ["iss", "exp", "nbf"];

#[test]
fn same_answers_as_a_value() {
    let cases: &[&str] = &[
        r#"{"iss":"a","exp":1700000000}"#,
        r#" { "iss" : "a" , "exp" : 17 , "nbf" : -3 } "#,
        "{\n\t\"iss\":\r\"a\"}\n",
        r#"{}"#,
        r#"{"iss":false}"#,
        r#"{"iss":true}"#,
        r#"{"iss":null}"#,
        r#"{"iss":42}"#,
        r#"{"iss":""}"#,
        r#"{"iss":"a","iss":"b"}"#,
        r#"{"iss":"a","iss":7}"#,
        r#"{"exp":"soon"}"#,
        r#"{"exp":1.5}"#,
        r#"{"exp":1e3}"#,
        r#"{"exp":1E3}"#,
        r#"{"exp":1e400}"#,
        r#"{"exp":-0}"#,
        r#"{"exp":0}"#,
        r#"{"exp":01}"#,
        r#"{"exp":-}"#,
        r#"{"exp":999999999999999}"#,
        r#"{"exp":9999999999999999}"#,
        r#"{"exp":99999999999999999999999}"#,
        r#"{"exp":-9223372036854775809}"#,
        r#"{"exp":[1,2]}"#,
        r#"{"exp":{"a":1}}"#,
        r#"{"aud":["x","y",{"z":[null,true,false,-1]}],"iss":"a"}"#,
        r#"{"aud":[],"o":{},"iss":"a"}"#,
        r#"{"iss":"a\u0062"}"#,
        r#"{"i\u0073s":"a"}"#,
        r#"{"iss":"\ud800"}"#,
        r#"{"x":"\ud800","iss":"a"}"#,
        r#"{"x":"\ud83d\ude00","iss":"a"}"#,
        r#"{"x":"\q"}"#,
        "{\"x\":\"tab\there\"}",
        "{\"iss\":\"caf\u{e9}\"}",
        r#"{"iss":"a",}"#,
        r#"{"iss":"a"} x"#,
        r#"{"iss":"a"}}"#,
        r#"{"iss":"a""#,
        r#"{"iss" "a"}"#,
        r#"{"iss":"a" "exp":1}"#,
        r#"{iss:"a"}"#,
        r#"{"x":[1,]}"#,
        r#"{"x":[1 2]}"#,
        r#"{"x":tru}"#,
        r#"{"x":truex}"#,
        r#"{"x":nul}"#,
        r#"{"x":1x}"#,
        r#"{"x":+1}"#,
        r#"{"x":.5}"#,
        r#"{"x":"\u00"}"#,
        r#"[]"#,
        r#"[1]"#,
        r#""iss""#,
        "false",
        "true",
        "null",
        "12",
        "",
        " ",
        "{",
        "}",
        r#"{"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":{"i":{"j":{"k":{"l":{"m":{"n":{"o":{"p":{"q":{"r":{"s":{"t":{"u":{"v":{"w":{"x":{"y":{"z":{"A":{"B":{"C":{"D":{"E":{"F":{"G":1}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}"#,
    ];
    for case in cases {
        let json = case.as_bytes();
        assert_eq!(pick(json, NAMES), with_serde(json, NAMES), "{case}");
        assert_eq!(
            pick(json, ["alg", "alg"]),
            with_serde(json, ["alg", "alg"]),
            "{case}"
        );
    }
    // Deeper than serde_json's limit: both refuse.
    let deep = format!(r#"{{"x":{}1{}}}"#, "[".repeat(200), "]".repeat(200));
    assert_eq!(pick(deep.as_bytes(), NAMES), Err(BadJson));
    assert_eq!(with_serde(deep.as_bytes(), NAMES), Err(BadJson));
    // Invalid UTF-8 inside a string.
    let bytes = b"{\"iss\":\"\xff\"}";
    assert_eq!(pick(bytes, NAMES), with_serde(bytes, NAMES));
    assert_eq!(with_serde(bytes, NAMES), Err(BadJson));
}

#[test]
fn the_scanner_reads_plain_tokens_and_borrows() {
    let json = br#"{"iss":"mobile-app","exp":1700000000,"roles":["a",{"b":null}],"nbf":-5}"#;
    let got = fast(json, NAMES).expect("plain JSON");
    assert_eq!(got[0], Field::Str(Cow::Borrowed("mobile-app")));
    assert!(matches!(&got[0], Field::Str(Cow::Borrowed(_))));
    assert_eq!(got[1], Field::Num(1_700_000_000.0));
    assert_eq!(got[2], Field::Num(-5.0));
    // The same name twice gets the same value.
    let got = fast(json, ["exp", "exp"]).expect("plain JSON");
    assert_eq!(got[0], got[1]);
    // What it leaves to serde_json.
    for other in [
        r#"{"iss":"a\u0062"}"#,
        r#"{"exp":1.5}"#,
        r#"{"exp":1e3}"#,
        r#"{"exp":-0}"#,
        r#"{"exp":9999999999999999}"#,
        "{\"iss\":\"caf\u{e9}\"}",
        r#"[1]"#,
        r#"{"iss":"a",}"#,
    ] {
        assert_eq!(fast(other.as_bytes(), NAMES), None, "{other}");
    }
}

/// Random texts built from JSON's pieces: whenever the scanner answers, a `Value` gives
/// the same answer.
#[test]
fn the_scanner_never_disagrees_with_serde_json() {
    const PIECES: &[&str] = &[
        "{", "}", "[", "]", ",", ":", " ", "\n", "\"iss\"", "\"exp\"", "\"nbf\"", "\"x\"", "\"\"",
        "\"a b\"", "0", "1", "-", "12", "-7", "00", ".5", "e2", "true", "false", "null", "tru",
        "\\", "\"\\n\"", "\"", "é",
    ];
    let mut rng = fastrand::Rng::with_seed(11);
    let mut answered = 0;
    for _ in 0..200_000 {
        let mut text = String::from("{");
        for _ in 0..rng.usize(0..14) {
            text.push_str(PIECES[rng.usize(..PIECES.len())]);
        }
        if rng.bool() {
            text.push('}');
        }
        if let Some(got) = fast(text.as_bytes(), NAMES) {
            answered += 1;
            assert_eq!(
                Ok(Top::Object(got)),
                with_serde(text.as_bytes(), NAMES),
                "{text}"
            );
        }
    }
    assert!(answered > 1000, "{answered}");
}
