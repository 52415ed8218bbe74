"""Moving files: fund files in, payment files out, over SFTP or a local folder.

Both transports have the same interface (``Transport``); the local folder is
the embedded default for the demo, SFTP (paramiko, host keys pinned, key
authentication) is production. Uploads are atomic: a temporary name, a size and
hash check, then a rename; a rerun after a crash at any point ends with exactly
one complete file.
"""
