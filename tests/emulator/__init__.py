"""Tests of the local emulator, over real loopback sockets with raw JSON frames."""
