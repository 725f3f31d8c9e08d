package main

// appleKeyHint is the hint of a DeviceCheck key (--key) that cannot be
// loaded, for every command that asks Apple.
const appleKeyHint = "give the .p8 file Apple let you download once when you created the key (Certificates, Identifiers & Profiles > Keys)"
