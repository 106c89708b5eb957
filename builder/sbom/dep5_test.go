package sbom

import "testing"

// busyboxCopyright is the shape of Debian's busybox copyright file: free-form, one licence,
// version 2 only.
const busyboxCopyright = `This package was debianized by Someone <someone@debian.org> on
Sun, 18 Jun 2000 23:31:02 -0600

BusyBox is an aggregate of multiple packages. These packages are copyrighted
by their respective authors.

Copyright: 1999-2005 Erik Andersen

License:

   This package is free software; you can redistribute it and/or modify
   it under the terms of the GNU General Public License as published by
   the Free Software Foundation; version 2 dated June, 1991.

   This package is distributed in the hope that it will be useful,
   but WITHOUT ANY WARRANTY; without even the implied warranty of
   MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the
   GNU General Public License for more details.

On Debian GNU/Linux systems, the complete text of the GNU General
Public License can be found in ` + "`/usr/share/common-licenses/GPL-2'." + `
`

// The copyright files below are written for these tests in the shapes Debian packages use.
func TestDebianLicense(t *testing.T) {
	cases := []struct {
		name, copyright, want string
	}{
		{"single GPL-2 (a kernel)", `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: Linux kernel
Source: https://www.kernel.org/pub/linux/kernel/
Comment:
 A multi-line comment
 .
 with an empty line.

Files: *
Copyright: 1991-2012 Linus Torvalds and many others
License: GPL-2

Files: debian/*
Copyright: 2006 Someone
License: GPL-2+
`, "GPL-2.0-only"},
		{"or-later with a later specific paragraph", `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: systemd

Files: *
Copyright: 2010-2015 Lennart Poettering
           2013 Tom Gundersen
License: LGPL-2.1+

Files: src/basic/siphash24.c
Copyright: 2012 Jean-Philippe Aumasson
License: CC0-1.0

License: LGPL-2.1+
 This library is free software; you can redistribute it and/or modify
 it under the terms of the GNU Lesser General Public License ...
`, "LGPL-2.1-or-later"},
		{"Files: * is not first", `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: debian/*
Copyright: 2020 Maintainer
License: GPL-3+

Files: *
Copyright: 2019 Upstream
License: Expat
`, "MIT"},
		{"dual licence", `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: *
Copyright: 1987-2020 Larry Wall
License: GPL-1+ or Artistic
`, "GPL-1.0-or-later OR Artistic-1.0-Perl"},
		{"Perl as a name", `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: *
Copyright: 2001 Someone
License: Perl
`, "GPL-1.0-or-later OR Artistic-1.0-Perl"},
		{"comma lowers precedence", `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: *
Copyright: 2001 Someone
License: GPL-2+ or BSD-3-clause, and MPL-2.0
`, "(GPL-2.0-or-later OR BSD-3-Clause) AND MPL-2.0"},
		{"and binds tighter than or", `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: *
Copyright: 2001 Someone
License: Apache-2.0 or MIT and ISC
`, "Apache-2.0 OR MIT AND ISC"},
		{"listed exception", `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: *
Copyright: 1992-2021 Free Software Foundation, Inc.
License: GPL-3+ with Autoconf exception
`, "GPL-3.0-or-later WITH Autoconf-exception-3.0"},
		{"unlisted exception", `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: *
Copyright: 2004 Someone
License: GPL-2+ with OpenSSL exception
`, "LicenseRef-GPL-2-plus-with-OpenSSL-exception"},
		{"public domain and a Debian-only name", `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: *
Copyright: none
License: public-domain and zlib-style
`, "LicenseRef-public-domain AND LicenseRef-zlib-style"},
		{"case-folded SPDX id and dropped .0", `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: *
Copyright: 2015 Someone
License: bsd-2-clause or Apache-2
`, "BSD-2-Clause OR Apache-2.0"},
		{"GFDL without invariants", `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: *
Copyright: 2015 Someone
License: GFDL-NIV-1.3+
`, "GFDL-1.3-no-invariants-or-later"},
		{"draft DEP-5 header", `Format-Specification: http://svn.debian.org/wsvn/dep/web/deps/dep5.mdwn?op=file&rev=135
Name: oldpkg

Files: *
Copyright: 2009 Someone
License: LGPL-2
`, "LGPL-2.0-only"},
		{"only the header has a licence", `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: tool
License: ISC

Files: src/*
Copyright: 2020 Someone
License: ISC
`, "ISC"},
		{"CRLF line ends", "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\r\n\r\nFiles: *\r\nCopyright: 2020 x\r\nLicense: Zlib\r\n", "Zlib"},
		{"free-form without a pointer to common-licenses", `This package was debianized by Someone on
Sun, 18 Jun 2000 23:31:02 -0600

Copyright: 1999-2005 Erik Andersen

License:

   This package is free software; you can redistribute it and/or modify
   it under the terms of the GNU General Public License version 2.
`, "NOASSERTION"},
		{"free-form GPL-2 only (busybox)", busyboxCopyright, "GPL-2.0-only"},
		{"free-form GPL-2 or later", `This package was debianized by Someone.

Copyright: 2001 Someone

    This program is free software; you can redistribute it and/or modify
    it under the terms of the GNU General Public License as published by
    the Free Software Foundation; either version 2 of the License, or
    (at your option) any later version.

On Debian systems, the complete text of the GNU General Public License
can be found in /usr/share/common-licenses/GPL-2.
`, "GPL-2.0-or-later"},
		{"free-form LGPL-2.1 or later", `Copyright (C) 1991-2015 Free Software Foundation, Inc.

    The library is free software; you can redistribute it and/or
    modify it under the terms of the GNU Lesser General Public
    License as published by the Free Software Foundation; either
    version 2.1 of the License, or (at your option) any later version.

On Debian systems, the complete text of the GNU Lesser General Public License
can be found in "/usr/share/common-licenses/LGPL-2.1".
`, "LGPL-2.1-or-later"},
		{"free-form with two licences (glibc)", `* Most of the GNU C library is under the following copyright:

    The GNU C Library is free software; you can redistribute it and/or
    modify it under the terms of the GNU Lesser General Public
    License as published by the Free Software Foundation; either
    version 2.1 of the License, or (at your option) any later version.

  On Debian systems, the complete text of the GNU Library
  General Public License can be found in ` + "`/usr/share/common-licenses/LGPL-2.1'." + `

* The utilities associated with GNU C library is under the following
  copyright:

    This program is free software; you can redistribute it and/or modify
    it under the terms of the GNU General Public License as published by
    the Free Software Foundation; version 2 of the License.

  On Debian systems, the complete text of the GNU General Public
  License can be found in ` + "`/usr/share/common-licenses/GPL-2'." + `
`, "NOASSERTION"},
		{"free-form pointer to a licence its notice does not name", `Copyright: 2001 Someone

    This library is free software; you can redistribute it and/or
    modify it under the terms of the GNU Lesser General Public License.

The complete text can be found in /usr/share/common-licenses/GPL-2.
`, "NOASSERTION"},
		{"free-form with a licence quoted in full", busyboxCopyright + `
Some files are under this licence instead:

   Redistribution and use in source and binary forms, with or without
   modification, are permitted provided that the following conditions
`, "NOASSERTION"},
		{"free-form unversioned pointer", `Copyright: 1998 Someone

    This program is free software; you can redistribute it and/or modify
    it under the terms of the GNU General Public License.

On Debian systems the full text is in /usr/share/common-licenses/GPL.
`, "NOASSERTION"},
		{"free-form pointer to a non-GNU licence", `Copyright: 2015 Someone

Licensed under the Apache License, Version 2.0, found on Debian systems in
/usr/share/common-licenses/Apache-2.0.
`, "NOASSERTION"},
		{"DEP-5 without Files: * or header licence", `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: src/*
Copyright: 2020 Someone
License: MIT
`, "MIT"},
		{"every Files paragraph's licence (ca-certificates)", `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Source: http://ftp.debian.org/debian/pool/main/c/ca-certificates/

Files: debian/*
       examples/*
       Makefile
       mozilla/*
       sbin/*
Copyright: 2003 Fumitoshi UKAI <ukai@debian.or.jp>
           Various Debian Contributors
License: GPL-2+
 This program is free software; you can redistribute it and/or modify
 .
 On Debian GNU/Linux systems, the complete text of the GNU General Public
 License can be found in '/usr/share/common-licenses/GPL-2'.

Files: mozilla/certdata.txt
Copyright: Mozilla Contributors
License: MPL-2.0
 This Source Code Form is subject to the terms of the Mozilla Public

Files: sbin/helper
Copyright: 2011 Someone
License: GPL-2+ or MIT

Files: examples/more
Copyright: 2012 Someone
License: GPL-2+

License: GPL-2+
 The text again, in a stand-alone paragraph.
`, "GPL-2.0-or-later AND MPL-2.0 AND (GPL-2.0-or-later OR MIT)"},
		{"a Files paragraph without a licence", `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: src/*
Copyright: 2020 Someone
License: MIT

Files: doc/*
Copyright: 2020 Someone
`, "NOASSERTION"},
		{"empty licence synopsis", `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: *
Copyright: 2020 Someone
License:
 full text only
`, "NOASSERTION"},
		{"broken grammar becomes one reference", `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: *
Copyright: 2020 Someone
License: GPL-2+ or or MIT
`, "LicenseRef-GPL-2-plus-or-or-MIT"},
		{"empty file", "", "NOASSERTION"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := DebianLicense([]byte(c.copyright))
			if got != c.want {
				t.Errorf("DebianLicense = %q, want %q", got, c.want)
			}
			if got != noAssertion {
				if err := checkExpression(got); err != nil {
					t.Errorf("%q is not a valid expression: %v", got, err)
				}
			}
		})
	}
}

func TestSPDXLicenseNames(t *testing.T) {
	cases := map[string]string{
		"GPL-2":                    "GPL-2.0-only",
		"GPL-2+":                   "GPL-2.0-or-later",
		"GPL-2.0+":                 "GPL-2.0-or-later",
		"GPL-3":                    "GPL-3.0-only",
		"GPL":                      "GPL-1.0-only",
		"GPL+":                     "GPL-1.0-or-later",
		"LGPL":                     "LGPL-2.0-only",
		"GPL-2.0.0":                "GPL-2.0-only",
		"Apache":                   "Apache-1.0",
		"Apache-2.0.0":             "Apache-2.0",
		"MPL":                      "MPL-1.1",
		"Zope-2":                   "ZPL-2.0",
		"Artistic-1":               "Artistic-1.0-Perl",
		"CC-BY-SA":                 "CC-BY-SA-1.0",
		"APACHE-2-LLVM-EXCEPTIONS": "Apache-2.0 WITH LLVM-exception",
		"LGPL-2.1+":                "LGPL-2.1-or-later",
		"LGPL-3":                   "LGPL-3.0-only",
		"AGPL-3+":                  "AGPL-3.0-or-later",
		"GFDL-1.2":                 "GFDL-1.2-only",
		"GPL-2.0-only":             "GPL-2.0-only",
		"GPL-4":                    "LicenseRef-GPL-4",
		"BSD-3-clause":             "BSD-3-Clause",
		"BSD-2-clause":             "BSD-2-Clause",
		"Expat":                    "MIT",
		"MIT":                      "MIT",
		"Apache-2.0":               "Apache-2.0",
		"MPL-2.0":                  "MPL-2.0",
		"MPL-1.1+":                 "MPL-1.1+",
		"public-domain":            "LicenseRef-public-domain",
		"CC0":                      "CC0-1.0",
		"Zope-2.1":                 "ZPL-2.1",
		"curl":                     "curl",
		"OpenSSL":                  "OpenSSL",
		"Artistic-2.0":             "Artistic-2.0",
		"other":                    "LicenseRef-other",
		"BSD-like (X11)":           "LicenseRef-BSD-like-X11",
		"permissive+1.0~":          "LicenseRef-permissive-plus-1.0",
	}
	for name, want := range cases {
		if got := spdxLicense(name); got != want {
			t.Errorf("spdxLicense(%q) = %q, want %q", name, got, want)
		}
	}
}
