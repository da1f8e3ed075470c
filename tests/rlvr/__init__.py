"""Tests of the RLVR study and the shared sampling / pass@k code it introduced."""
