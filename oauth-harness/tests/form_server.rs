//! `oauth-harness form` over real HTTP on loopback: its API answers only
//! calls carrying the token in the address the command printed, and no
//! other page may frame it.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running `oauth-harness form`, stopped when dropped.
struct Form {
    child: Child,
    /// The page's address as printed, token included.
    url: url::Url,
    /// Where the command says browser logins come back to.
    callback: String,
}

impl Form {
    fn start() -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_oauth-harness"))
            .args(["form", "--port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("form starts");
        let stdout = child.stdout.take().expect("piped");
        let printed: Vec<String> = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .take_while(|line| !line.starts_with("press Ctrl-C"))
            .collect();
        let after = |prefix: &str| {
            printed
                .iter()
                .find_map(|line| line.trim().split_once(prefix))
                .map(|(_, rest)| rest.split_whitespace().next().unwrap_or("").to_owned())
                .unwrap_or_else(|| panic!("printed no `{prefix}`: {printed:?}"))
        };
        let url = url::Url::parse(&after("configuration form at ")).expect("a URL");
        let callback = after("set the redirect URI to ");
        Self {
            child,
            url,
            callback,
        }
    }

    fn port(&self) -> u16 {
        self.url.port().expect("a port")
    }

    /// `127.0.0.1:PORT`, the only Host the form answers to.
    fn authority(&self) -> String {
        format!("127.0.0.1:{}", self.port())
    }

    /// The token in the printed address, which the page sends with its calls.
    fn token(&self) -> String {
        self.url
            .query_pairs()
            .find(|(name, _)| name == "token")
            .map(|(_, value)| value.into_owned())
            .expect("the printed address holds the form's token")
    }

    /// One request on a connection of its own; the answer's status, its
    /// headers (names in lower case) and its body.
    fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port())).expect("connects");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let mut request = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        stream.write_all(request.as_bytes()).expect("sent");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("an answer");
        let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|code| code.parse().ok())
            .expect("a status line");
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        Answer {
            status,
            headers,
            body: body.to_owned(),
        }
    }

    /// A call as the page makes it: its Host and Origin, JSON, and `token`
    /// in the page's header when given.
    fn call(&self, method: &str, path: &str, token: Option<&str>, body: &str) -> Answer {
        let authority = self.authority();
        let origin = format!("http://{authority}");
        let mut headers = vec![
            ("Host", authority.as_str()),
            ("Origin", origin.as_str()),
            ("Content-Type", "application/json"),
        ];
        if let Some(token) = token {
            headers.push(("X-Form-Token", token));
        }
        self.send(method, path, &headers, body)
    }
}

impl Drop for Form {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Answer {
    status: u16,
    headers: HashMap<String, String>,
    body: String,
}

impl Answer {
    /// Asserts that no other page may show this one in a frame.
    fn refuses_frames(&self, what: &str) {
        assert_eq!(
            self.headers
                .get("content-security-policy")
                .map(String::as_str),
            Some("frame-ancestors 'none'"),
            "{what}: {:?}",
            self.headers
        );
        assert_eq!(
            self.headers.get("x-frame-options").map(String::as_str),
            Some("DENY"),
            "{what}: {:?}",
            self.headers
        );
    }
}

#[test]
fn the_forms_api_needs_the_token_of_the_printed_address() {
    let form = Form::start();
    let no_token = form.call("POST", "/api/validate", None, "{}");
    // Another local user reaches the same loopback port with the right
    // Host and no Origin: without the token they are refused.
    assert_eq!(no_token.status, 403, "{}", no_token.body);
    assert!(no_token.body.contains("token"), "{}", no_token.body);
    no_token.refuses_frames("a call without the token");

    let token = form.token();
    assert_eq!(token.len(), 43, "32 random bytes, base64url");
    assert!(
        !no_token.body.contains(&token),
        "the refusal does not give the token away"
    );
    let mut wrong = token.clone().into_bytes();
    wrong[0] = if wrong[0] == b'A' { b'B' } else { b'A' };
    let wrong = String::from_utf8(wrong).expect("ASCII");
    for (what, given) in [
        ("another token", wrong.as_str()),
        ("the token and more", &format!("{token}A")),
        ("a prefix of the token", &token[..42]),
        ("empty", ""),
    ] {
        let refused = form.call("POST", "/api/validate", Some(given), "{}");
        assert_eq!(refused.status, 403, "{what}: {}", refused.body);
        assert!(!refused.body.contains(&token), "{what}: {}", refused.body);
        refused.refuses_frames(what);
    }
    for api in ["/api/schema", "/api/token", "/api/login", "/api/finish"] {
        let method = if api == "/api/schema" { "GET" } else { "POST" };
        let refused = form.call(method, api, None, "{}");
        assert_eq!(refused.status, 403, "{api}: {}", refused.body);
    }

    let validated = form.call("POST", "/api/validate", Some(&token), "{}");
    assert_eq!(validated.status, 200, "{}", validated.body);
    assert!(validated.body.contains("\"errors\""), "{}", validated.body);
    validated.refuses_frames("a validation");
    let schema = form.call("GET", "/api/schema", Some(&token), "");
    assert_eq!(schema.status, 200, "{}", schema.body);
    assert!(schema.body.contains("grant_type"), "{}", schema.body);
    schema.refuses_frames("the schema");
}

#[test]
fn the_page_and_the_login_redirect_need_no_token_and_never_show_it() {
    let form = Form::start();
    let token = form.token();
    assert!(
        !form.callback.contains(&token),
        "the redirect URI, registered at authorization servers, holds no token: {}",
        form.callback
    );
    let authority = form.authority();
    let host = [("Host", authority.as_str())];
    // The printed address, the bare page, and a login's redirect back from
    // the authorization server (which cannot know the token).
    let printed = format!("/?{}", form.url.query().expect("a query"));
    for path in [
        printed.as_str(),
        "/",
        "/callback?code=abc&state=xyz",
        "/callback/login.example?code=abc&state=xyz",
    ] {
        let page = form.send("GET", path, &host, "");
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        assert_eq!(
            page.headers.get("content-type").map(String::as_str),
            Some("text/html"),
            "{path}"
        );
        assert!(!page.body.contains(&token), "{path} holds no token");
        page.refuses_frames(path);
    }
    let script = form.send("GET", "/form.js", &host, "");
    assert_eq!(script.status, 200);
    assert!(!script.body.contains(&token));
    script.refuses_frames("the page's code");

    // Refusals too: no page of this server is shown in another's frame.
    let elsewhere = form.send("GET", "/", &[("Host", "rebound.example")], "");
    assert_eq!(elsewhere.status, 403);
    elsewhere.refuses_frames("another Host");
    let missing = form.send("GET", "/nothing", &host, "");
    assert_eq!(missing.status, 404);
    missing.refuses_frames("no such page");
}

/// A token endpoint on loopback answering every request with `body`, as
/// `200 OK` JSON; its token URL.
fn token_endpoint(body: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("listens");
    let port = listener.local_addr().expect("an address").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            // The whole request: its head, then the body its length gives.
            let mut reader = BufReader::new(stream.try_clone().expect("cloned"));
            let mut length = 0;
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|read| read > 0) {
                if line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap_or(0);
                }
                line.clear();
            }
            let mut request_body = vec![0; length];
            let _ = reader.read_exact(&mut request_body);
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://127.0.0.1:{port}/token")
}

#[test]
fn an_answer_without_a_usable_access_token_names_the_fault_and_offers_its_refresh_token() {
    // The access token is no string: no token can be used, but the server
    // rotated the refresh token, and the one the form presented may be spent.
    let token_url =
        token_endpoint(r#"{"access_token":5,"refresh_token":"RT-NEW-1","token_type":"Bearer"}"#);
    let form = Form::start();
    let document = serde_json::json!({
        "grant_type": "refresh_token",
        "token_url": token_url,
        "client_id": "c",
        "client_secret": "s",
        "refresh_token": "RT-OLD",
    });
    let answer = form.call(
        "POST",
        "/api/token",
        Some(&form.token()),
        &document.to_string(),
    );
    assert!(
        !(200..300).contains(&answer.status),
        "no token was obtained: {} {}",
        answer.status,
        answer.body
    );
    let body: serde_json::Value = serde_json::from_str(&answer.body).expect("a JSON answer");
    let error = body["error"].as_str().expect("an error to show");
    assert!(
        error.contains("access_token"),
        "the server's fault: {error}"
    );
    assert!(
        !error.contains("RT-NEW-1") && !answer.body.contains("RT-OLD"),
        "no secret beyond the keep offer: {}",
        answer.body
    );
    assert!(
        body["keep"].to_string().contains("RT-NEW-1"),
        "the rotated refresh token is still offered to keep: {}",
        answer.body
    );
    assert_eq!(
        body.as_object().map(|members| members.len()),
        Some(2),
        "only the fault and the keep offer, no token: {}",
        answer.body
    );
}
