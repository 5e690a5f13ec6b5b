"""A throwaway certificate authority for the local servers: the control plane's and the simulator's.

Both kube-apiserver (TLS only, admins by client certificate) and the simulator's HTTPS mode need a
fresh CA and certificates a test chooses to trust. This is the one place they are made; it imports
none of this project's other packages, so the simulator and the control-plane harness share it
without depending on each other.
"""

from local_pki.authority import CertificateAuthority, Issued, alt_names, key_pem, name, new_key

__all__ = ["CertificateAuthority", "Issued", "alt_names", "key_pem", "name", "new_key"]
