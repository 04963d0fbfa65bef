"""Third-party OAuth 2.0 authorization server for the connector's end-to-end tests.

The server is built on Authlib (with Flask), so the tests talk to a peer whose
OAuth behaviour does not come from the connector's own code: every OAuth rule
(grant handling, client authentication, PKCE, JWT assertion checks, error
responses) is Authlib's. This module only supplies in-memory models (clients, users,
authorization codes, tokens) and configuration.

Usage:

    python3 server.py FIXTURE.json

FIXTURE.json describes the port (0 lets the OS choose), optional TLS
certificate and key, the registered clients, the users and the trusted JWT
assertion issuers. Once the socket is bound the server prints one line,
``LISTENING <base-url>``, to stdout and serves until it is killed.

Endpoints:

    POST /token      client_credentials, password, refresh_token (rotating),
                     authorization_code (+ PKCE), and the RFC 7523 jwt-bearer
                     grant; client authentication by client_secret_basic,
                     client_secret_post, none or private_key_jwt.
    GET  /authorize  response_type=code (and token for implicit clients),
                     approved at once for the login_hint user or the first user.
    GET  /resource   protected by a bearer access token.
    POST /revoke     RFC 7009 revocation of access and refresh tokens.
    POST /introspect RFC 7662 introspection, for any registered client.
"""

import json
import logging
import os
import secrets
import sys
import threading
import time

from authlib.common.security import generate_token
from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.integrations.flask_oauth2 import ResourceProtector
from authlib.integrations.flask_oauth2 import current_token
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import AuthorizationCodeMixin
from authlib.oauth2.rfc6749 import ClientMixin
from authlib.oauth2.rfc6749 import TokenMixin
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.util import list_to_scope
from authlib.oauth2.rfc6749.util import scope_to_list
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc6750 import BearerTokenValidator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7523 import JWTBearerGrant
from authlib.oauth2.rfc7636 import CodeChallenge
from flask import Flask
from flask import jsonify
from flask import request
from joserfc.jwk import JWKRegistry, KeySet
from werkzeug.serving import make_server

ACCESS_TOKEN_LIFETIME = 3600
AUTHORIZATION_CODE_LIFETIME = 600

# Every grant accepts every authentication method; the client's registered
# method (checked by Authlib through Client.check_endpoint_auth_method) then
# decides which one a given client may actually use.
ALL_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
# RFC 6749 §4.4: the client credentials grant is for confidential clients only.
CONFIDENTIAL_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]


def same_secret(expected, given):
    # compare_digest on str only accepts ASCII; secrets may be any Unicode.
    return secrets.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


# --------------------------------------------------------------------------
# In-memory models
# --------------------------------------------------------------------------


class User:
    def __init__(self, username, password):
        self.username = username
        self.password = password


def key_set(spec):
    """A JWK Set, or a list of PEM public keys (each `{"kty": ..., "kid": ..., "pem": ...}`)."""
    if not spec:
        return KeySet([])
    if isinstance(spec, dict):
        return KeySet.import_key_set(spec)
    return KeySet([JWKRegistry.import_key(entry["pem"], entry["kty"], {"kid": entry["kid"]}) for entry in spec])


class Client(ClientMixin):
    def __init__(self, spec):
        self.client_id = spec["client_id"]
        self.client_secret = spec.get("client_secret")
        self.token_endpoint_auth_method = spec["token_endpoint_auth_method"]
        self.grant_types = spec.get("grant_types") or []
        self.redirect_uris = spec.get("redirect_uris") or []
        self.scope = spec.get("scope") or ""
        # An empty set (not None) so an assertion from a client without keys
        # fails verification as invalid_client instead of crashing.
        self.jwks = key_set(spec.get("jwks"))

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        # RFC 6749 §3.1.2.3: redirect_uri may be omitted only when exactly
        # one is registered.
        if len(self.redirect_uris) == 1:
            return self.redirect_uris[0]
        return None

    def get_allowed_scope(self, scope):
        # Authlib passes the requested scope here for every grant (through
        # BearerTokenGenerator). No scope means the client's registered scope
        # (RFC 6749 §3.3 default); asking for anything outside it returns None,
        # which Authlib turns into invalid_scope.
        if not scope:
            return self.scope
        requested = scope_to_list(scope)
        if not set(requested).issubset(scope_to_list(self.scope)):
            return None
        return list_to_scope(requested)

    def check_redirect_uri(self, redirect_uri):
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret):
        return self.client_secret is not None and same_secret(self.client_secret, client_secret)

    def check_endpoint_auth_method(self, method, endpoint):
        return method == self.token_endpoint_auth_method

    def check_response_type(self, response_type):
        grant_type = {"code": "authorization_code", "token": "implicit"}.get(response_type)
        return grant_type in self.grant_types

    def check_grant_type(self, grant_type):
        return grant_type in self.grant_types


class AuthorizationCode(AuthorizationCodeMixin):
    def __init__(self, code, client_id, redirect_uri, scope, user, challenge, challenge_method):
        self.code = code
        self.client_id = client_id
        self.redirect_uri = redirect_uri
        self.scope = scope
        self.user = user
        self.code_challenge = challenge
        self.code_challenge_method = challenge_method
        self.expires_at = time.time() + AUTHORIZATION_CODE_LIFETIME

    def get_redirect_uri(self):
        return self.redirect_uri

    def get_scope(self):
        return self.scope


class Token(TokenMixin):
    def __init__(self, token, client, user):
        self.access_token = token["access_token"]
        self.refresh_token = token.get("refresh_token")
        self.scope = token.get("scope", "")
        self.expires_in = token["expires_in"]
        self.issued_at = time.time()
        self.client = client
        self.user = user
        self.refresh_token_revoked = False
        self.access_token_revoked = False

    def check_client(self, client):
        return self.client.client_id == client.get_client_id()

    def get_scope(self):
        return self.scope

    def get_expires_in(self):
        return self.expires_in

    def is_expired(self):
        return time.time() >= self.issued_at + self.expires_in

    def is_revoked(self):
        # Rotation revokes only the refresh token; the access token issued
        # alongside it stays usable until it expires or is revoked itself.
        return self.access_token_revoked

    def get_user(self):
        return self.user

    def get_client(self):
        return self.client


class Store:
    """Everything the server knows, loaded from the fixture and kept in memory."""

    def __init__(self, fixture):
        self.clients = {c["client_id"]: Client(c) for c in fixture.get("clients") or []}
        self.users = {u["username"]: User(u["username"], u["password"]) for u in fixture.get("users") or []}
        self.first_user = next(iter(self.users.values()), None)
        self.issuers = {
            i["issuer"]: key_set(i["jwks"]) for i in fixture.get("assertion_issuers") or []
        }
        self.codes = {}
        self.access_tokens = {}
        self.refresh_tokens = {}
        self.used_client_assertions = set()
        # The audience of every JWT assertion; known only once the port is bound.
        self.token_url = None


# --------------------------------------------------------------------------
# Authlib grants and client authentication, wired to the store
# --------------------------------------------------------------------------


def build_app(store):
    def save_token(token, req):
        record = Token(token, req.client, req.user)
        store.access_tokens[record.access_token] = record
        if record.refresh_token:
            store.refresh_tokens[record.refresh_token] = record

    app = Flask(__name__)
    server = AuthorizationServer(app, query_client=store.clients.get, save_token=save_token)

    bearer = BearerTokenGenerator(
        access_token_generator=lambda **_: generate_token(42),
        refresh_token_generator=lambda **_: generate_token(48),
        expires_generator=ACCESS_TOKEN_LIFETIME,
    )

    def generate_bearer_token(grant_type, client, user=None, scope=None, expires_in=None, include_refresh_token=True):
        # Authlib's password grant always asks for a refresh token; only
        # clients registered for the refresh_token grant should get one.
        include_refresh_token = include_refresh_token and client.check_grant_type("refresh_token")
        return bearer(grant_type, client, user, scope, expires_in, include_refresh_token)

    server.register_token_generator("default", generate_bearer_token)

    class PrivateKeyJWT(JWTBearerClientAssertion):
        # Authlib's default method name is "client_assertion_jwt"; the client
        # metadata (RFC 7591) calls it private_key_jwt.
        CLIENT_AUTH_METHOD = "private_key_jwt"

        def get_audiences(self):
            return [store.token_url]

        def resolve_client_public_key(self, client):
            return client.jwks

        def validate_jti(self, claims, jti):
            key = (claims["sub"], jti)
            if key in store.used_client_assertions:
                return False
            store.used_client_assertions.add(key)
            return True

    server.register_client_auth_method(PrivateKeyJWT.CLIENT_AUTH_METHOD, PrivateKeyJWT())

    class ClientCredentialsGrant(grants.ClientCredentialsGrant):
        TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS

    class PasswordGrant(grants.ResourceOwnerPasswordCredentialsGrant):
        TOKEN_ENDPOINT_AUTH_METHODS = ALL_AUTH_METHODS

        def authenticate_user(self, username, password):
            user = store.users.get(username)
            if user and same_secret(user.password, password):
                return user
            return None

    class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
        TOKEN_ENDPOINT_AUTH_METHODS = ALL_AUTH_METHODS

        def save_authorization_code(self, code, req):
            store.codes[code] = AuthorizationCode(
                code=code,
                client_id=req.client.get_client_id(),
                redirect_uri=req.payload.redirect_uri,
                scope=req.scope,
                user=req.user,
                challenge=req.payload.data.get("code_challenge"),
                challenge_method=req.payload.data.get("code_challenge_method"),
            )

        def query_authorization_code(self, code, client):
            item = store.codes.get(code)
            if item and item.client_id == client.get_client_id() and time.time() < item.expires_at:
                return item
            return None

        def delete_authorization_code(self, authorization_code):
            store.codes.pop(authorization_code.code, None)

        def authenticate_user(self, authorization_code):
            return authorization_code.user

    class RefreshTokenGrant(grants.RefreshTokenGrant):
        TOKEN_ENDPOINT_AUTH_METHODS = ALL_AUTH_METHODS
        # Rotation: each refresh returns a new refresh token and the old one
        # is revoked in revoke_old_credential.
        INCLUDE_NEW_REFRESH_TOKEN = True

        def authenticate_refresh_token(self, refresh_token):
            record = store.refresh_tokens.get(refresh_token)
            if record and not record.refresh_token_revoked:
                return record
            return None

        def authenticate_user(self, refresh_token):
            return refresh_token.user

        def revoke_old_credential(self, refresh_token):
            refresh_token.refresh_token_revoked = True

    class AssertionGrant(JWTBearerGrant):
        """RFC 7523 §2.1 with the assertion signed by a separate trusted issuer.

        Authlib's JWTBearerGrant treats the assertion's ``iss`` as the client
        and does no client authentication of its own. Here the issuers are
        identity providers listed in the fixture, so the client authenticates
        the usual way first, and the issuer lookup hands back that client.
        """

        TOKEN_ENDPOINT_AUTH_METHODS = ALL_AUTH_METHODS

        def validate_token_request(self):
            self.authenticated_client = self.authenticate_token_endpoint_client()
            super().validate_token_request()

        def resolve_issuer_client(self, issuer):
            self.issuer_keys = store.issuers.get(issuer)
            return self.authenticated_client if self.issuer_keys else None

        def resolve_client_public_key(self, client):
            return self.issuer_keys

        def get_audiences(self):
            return [store.token_url]

        def authenticate_user(self, subject):
            return store.users.get(subject)

        def has_granted_permission(self, client, user):
            return True

    server.register_grant(ClientCredentialsGrant)
    server.register_grant(PasswordGrant)
    server.register_grant(AuthorizationCodeGrant, [CodeChallenge(required=True)])
    server.register_grant(RefreshTokenGrant)
    # Authlib lets only public ("none") clients use the implicit grant.
    server.register_grant(grants.ImplicitGrant)
    server.register_grant(AssertionGrant)

    class BearerValidator(BearerTokenValidator):
        def authenticate_token(self, token_string):
            return store.access_tokens.get(token_string)

    def query_token(token_string, token_type_hint):
        if token_type_hint != "refresh_token":
            record = store.access_tokens.get(token_string)
            if record and not record.access_token_revoked:
                return record
        record = store.refresh_tokens.get(token_string)
        if record and not record.refresh_token_revoked:
            return record
        return None

    class Revocation(RevocationEndpoint):
        CLIENT_AUTH_METHODS = ALL_AUTH_METHODS

        def query_token(self, token_string, token_type_hint):
            return query_token(token_string, token_type_hint)

        def revoke_token(self, token, request):
            # RFC 7009 section 2.1: revoking a refresh token also revokes the
            # access token of the same grant.
            if request.form.get("token") == token.refresh_token:
                token.refresh_token_revoked = True
            token.access_token_revoked = True

    class Introspection(IntrospectionEndpoint):
        CLIENT_AUTH_METHODS = ALL_AUTH_METHODS

        def query_token(self, token_string, token_type_hint):
            return query_token(token_string, token_type_hint)

        def check_permission(self, token, client, request):
            return True

        def introspect_token(self, token):
            return {
                "active": True,
                "client_id": token.client.client_id,
                "token_type": "Bearer",
                "username": token.user.username if token.user else None,
                "scope": token.get_scope(),
                "exp": int(token.issued_at + token.expires_in),
                "iat": int(token.issued_at),
            }

    server.register_endpoint(Revocation)
    server.register_endpoint(Introspection)

    require_oauth = ResourceProtector()
    require_oauth.register_token_validator(BearerValidator())

    # Codes and refresh tokens are single-use; serialising the token endpoint
    # keeps two concurrent requests from both redeeming the same one.
    token_lock = threading.Lock()

    @app.post("/token")
    def token():
        with token_lock:
            return server.create_token_response()

    @app.post("/revoke")
    def revoke():
        with token_lock:
            return server.create_endpoint_response(Revocation.ENDPOINT_NAME)

    @app.post("/introspect")
    def introspect():
        return server.create_endpoint_response(Introspection.ENDPOINT_NAME)

    @app.get("/authorize")
    def authorize():
        # No login page: consent is given at once by the login_hint user, or by
        # the first fixture user. An unknown login_hint is a refusal, which
        # Authlib reports to the client as access_denied.
        hint = request.args.get("login_hint")
        user = store.users.get(hint) if hint else store.first_user
        try:
            grant = server.get_consent_grant(end_user=user)
        except OAuth2Error as error:
            return server.handle_error_response(request, error)
        return server.create_authorization_response(grant=grant, grant_user=user)

    @app.get("/resource")
    @require_oauth()
    def resource():
        user = current_token.get_user()
        return jsonify(
            client_id=current_token.get_client().get_client_id(),
            scope=current_token.get_scope(),
            user=user.username if user else None,
        )

    return app


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: server.py FIXTURE.json")
    with open(sys.argv[1], encoding="utf-8") as f:
        fixture = json.load(f)

    # The test harness may never read our stderr; per-request access logs
    # could fill the pipe and stall the server. Errors are still reported.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    tls = fixture.get("tls")
    ssl_context = (tls["cert_file"], tls["key_file"]) if tls else None
    scheme = "https" if tls else "http"

    # The token URL (the JWT audience) needs the port the OS picks. Requests
    # are only handled once serve_forever runs, so setting it after binding
    # is safe.
    store = Store(fixture)
    httpd = make_server(
        "127.0.0.1", fixture.get("port", 0), build_app(store), threaded=True, ssl_context=ssl_context
    )
    base_url = f"{scheme}://127.0.0.1:{httpd.server_port}"
    store.token_url = base_url + "/token"

    print(f"LISTENING {base_url}", flush=True)
    if fixture.get("exit_with_stdin"):
        # The test process holds our stdin; when it exits, however abruptly,
        # the pipe closes and the server goes with it instead of lingering.
        def watch_stdin():
            sys.stdin.read()
            os._exit(0)

        threading.Thread(target=watch_stdin, daemon=True).start()
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
