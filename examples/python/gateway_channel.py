"""How the examples reach the gateway: TLS when given the CA of the gateway's
certificate, plaintext for the demo; and the department token as metadata."""

import grpc


def gateway_channel(address, ca=None):
    if ca:
        with open(ca, "rb") as f:
            return grpc.secure_channel(address, grpc.ssl_channel_credentials(root_certificates=f.read()))
    return grpc.insecure_channel(address)


def token_metadata(token):
    return [("authorization", f"Bearer {token}")]
