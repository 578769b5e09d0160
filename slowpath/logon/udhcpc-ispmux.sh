#!/bin/sh
# ispmux logon script for busybox udhcpc (claims 8 and 18): sends the customer id and password
# your ISP gave you in DHCP options 224 and 225, like dhclient-ispmux.conf does for dhclient.
#   udhcpc-ispmux.sh IFACE CUSTOMER_ID PASSWORD [more udhcpc options...]
set -eu
iface=$1 id=$2 pw=$3
shift 3
hex() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }
exec udhcpc -i "$iface" -x "0xe0:$(hex "$id")" -x "0xe1:$(hex "$pw")" "$@"
