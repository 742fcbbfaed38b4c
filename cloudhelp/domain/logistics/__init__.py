"""Document logistics (物流流转): papers and certificates travel between the tiers, residents
don't. ``states`` holds the item states and their allowed moves, ``codes`` the tracking codes,
``routes`` the way through the station tree, ``items`` registering items and recording their
events, ``runs`` bundling items per hop with a manifest, ``handover`` ready-for-pickup and
pickup, ``exceptions`` lost, damaged, wrong station and not collected, ``figures`` what the
board and the reports count, ``labels`` the label and manifest PDFs. docs/logistics.md has the
rules."""
