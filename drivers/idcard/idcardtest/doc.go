// Package idcardtest is a fake ID-card reader: tests push cards into its channel.
package idcardtest
