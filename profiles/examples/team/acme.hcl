# Acme's workspace: the team base, plus more memory, blurred shots and the
# client's identity for encrypted exports.
extends = "base.hcl"

description = "Acme Corp: checkout rewrite"
memory      = "4GiB"

tracking {
  blur = true
}

client {
  name      = "Acme Corp"
  recipient = "age1sq4mc7j5g0qa0s834tpyk0fwf9qjswap4aad74utehzp6ur7ydfq0ufv38"
}
